"""Training configuration: frozen dataclasses, validated once at the boundary (YAML, CLI, sweep).

A config file is a preset plus overrides:

    preset: quick            # 'quick' or 'paper' (optional; the dataclass defaults are the paper's settings)
    seed: 0
    data: {dataset: omniglot}
    rae: {regularizers: {prototype: 1.0, barlow: 10.0}, regularizer_options: {barlow: {lam: 0.01}}}

Unknown keys, wrong types and out-of-range values raise ConfigError naming the key (for example
`rae.regularizers.protoype`); nothing is silently corrected.

The names a setting may take come from the registries they describe (regularizers, diffusion samplers,
datasets), each importable without torch; a regularizer's options are declared on its class, whose module (and
torch) is imported only when a config sets options.
"""
from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from models import regularizers  # the registry (torch-free); NAMES is read where it is used
from models.data.load import DATASETS
from models.diffusion.guidance import RULES as GUIDANCE_RULES
from models.diffusion.samplers import NAMES as SAMPLERS

# SPEC part 0: latent 64 for Omniglot, 128 for QuickDraw (the paper's appendix table).
DEFAULT_LATENT = {"omniglot": 64, "quickdraw": 128, "qdfs": 128}
AUGMENTATIONS = ("light", "normal", "strong")
# Learning-rate schedules (models/schedules.py): 'constant' is the paper's (no scheduler); 'cosine' is ours.
LR_SCHEDULES = ("constant", "cosine")
PRECISIONS = ("fp32", "bf16")  # rae.precision: bf16 runs the RAE's networks under autocast while training (ours)
PREDICTIONS = ("eps", "v")  # models.diffusion.model.PREDICTIONS (named here so that validation needs no torch)
# Where training and evaluation compute: 'auto' is 'cuda' when torch sees a GPU (for a Ray trial: the one Ray
# assigned it through CUDA_VISIBLE_DEVICES), else 'cpu'. Resolved by models.device.resolve_device.
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


class ConfigError(ValueError):
    """A config value that is unknown, of the wrong type or out of range; the message names the key."""


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "omniglot"
    data_dir: str | None = None  # None: --data-dir, then $HUMANLIKE_DATA_DIR, then the download cache
    train_classes: int | None = None  # a seeded subset of the training classes (None: all)
    test_classes: int | None = None  # a seeded subset of the test classes (None: all)

    def check(self) -> None:
        _one_of("data.dataset", self.dataset, DATASETS)
        _positive("data.train_classes", self.train_classes, allow_none=True)
        _positive("data.test_classes", self.test_classes, allow_none=True)


@dataclass(frozen=True)
class RAEConfig:
    """SPEC sections 1-2: the 48x48 RAE, Adam 1e-4 (wd 1e-5), batch 128, 100 epochs."""

    latent_size: int | None = None  # None: the dataset's default (DEFAULT_LATENT)
    width: int = 128
    regularizers: dict[str, float] = field(default_factory=dict)  # name -> weight; {} is the 'none' setting
    # name -> {option: value}, the options each regularizer class declares (models/regularizers/options.py);
    # {} = every default. Options of a regularizer without weight are allowed and unused (a family sweep).
    regularizer_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    augmentation: str = "normal"  # strength of the contrastive views (SPEC section 2)
    # prototype loss: mask same-class negatives (SPEC part 0 option); the older spelling of
    # regularizer_options.prototype.mask_same_class, kept for existing configs and checkpoints
    mask_same_class: bool = False
    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-4
    weight_decay: float = 1e-5
    lr_schedule: str = "constant"  # the paper's; 'cosine' = linear warm-up then cosine decay (ours)
    warmup: float = 0.0  # fraction of all steps spent warming up linearly (cosine schedule only)
    # 'fp32' (the paper's) or 'bf16' (ours): while training, the encoder's and decoder's layers run in bfloat16
    # under torch.autocast; weights, optimizer, losses and every evaluation stay fp32 (models/rae.py)
    precision: str = "fp32"

    def check(self) -> None:
        _positive("rae.latent_size", self.latent_size, allow_none=True)
        _positive("rae.width", self.width)
        for name, weight in self.regularizers.items():
            if name not in regularizers.NAMES:
                raise ConfigError(f"rae.regularizers.{name}: unknown regularizer; "
                                  f"choose from {', '.join(regularizers.NAMES)}")
            if not math.isfinite(weight) or weight < 0:
                raise ConfigError(f"rae.regularizers.{name}: weight must be finite and >= 0, got {weight!r}")
        _check_regularizer_options(self)
        _one_of("rae.augmentation", self.augmentation, AUGMENTATIONS)
        _positive("rae.epochs", self.epochs)
        _positive("rae.batch_size", self.batch_size)
        _positive("rae.lr", self.lr)
        _non_negative("rae.weight_decay", self.weight_decay)
        _schedule("rae", self.lr_schedule, self.warmup)
        _one_of("rae.precision", self.precision, PRECISIONS)

    @property
    def active(self) -> dict[str, float]:
        """The regularizers that are really built (weight 0 means 'not there')."""
        return {k: v for k, v in sorted(self.regularizers.items()) if v > 0}

    @property
    def options(self) -> dict[str, dict[str, Any]]:
        """{name: {option: value}} as given, with the old `mask_same_class` field folded in (the RAE's
        regularizer_options; every option not named takes its declared default)."""
        out = {name: dict(given) for name, given in self.regularizer_options.items()}
        if self.mask_same_class:
            out.setdefault("prototype", {})["mask_same_class"] = True
        return out

    @property
    def setting(self) -> str:
        return setting_name(self.regularizers)


def setting_name(weights: Mapping[str, float]) -> str:
    """The one name of a regularizer setting, in every table, figure and row: 'none' when no weight is > 0, else
    the active names sorted and joined by '+' ('prototype', 'barlow+prototype')."""
    return "+".join(sorted(k for k, v in weights.items() if float(v) > 0)) or "none"


@dataclass(frozen=True)
class LDMConfig:
    """SPEC section 3: AdamW 1e-4 (eps 1e-5, wd 0.01), batch 128, 100 epochs, 10% null condition."""

    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-4
    weight_decay: float = 0.01
    drop_prob: float = 0.1
    width: int = 64
    timesteps: int = 1000
    lr_schedule: str = "constant"  # the paper's; 'cosine' = linear warm-up then cosine decay (ours)
    warmup: float = 0.0  # fraction of all steps spent warming up linearly (cosine schedule only)
    ema: float = 0.0  # decay of the denoiser's exponential moving average, sampled from when > 0 (ours; paper: none)
    grad_clip: float = 0.0  # clip the gradient's global norm to this when > 0 (ours; paper: none)
    prediction: str = "eps"  # what the denoiser outputs: 'eps' (the paper's) or 'v' (ours; models/diffusion/model.py)
    loss_space: str = "eps"  # the MSE on the implied eps (the paper's weighting) or, for a v-model, on v itself

    def check(self) -> None:
        _positive("ldm.epochs", self.epochs)
        _positive("ldm.batch_size", self.batch_size)
        _positive("ldm.lr", self.lr)
        _non_negative("ldm.weight_decay", self.weight_decay)
        if not 0.0 <= self.drop_prob < 1.0:
            raise ConfigError(f"ldm.drop_prob: must be in [0, 1), got {self.drop_prob!r}")
        _positive("ldm.width", self.width)
        _positive("ldm.timesteps", self.timesteps)
        _schedule("ldm", self.lr_schedule, self.warmup)
        if not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"ldm.ema: must be in [0, 1) (0: no weight averaging), got {self.ema!r}")
        _non_negative("ldm.grad_clip", self.grad_clip)
        _one_of("ldm.prediction", self.prediction, PREDICTIONS)
        _one_of("ldm.loss_space", self.loss_space, PREDICTIONS)
        if self.loss_space == "v" and self.prediction != "v":
            raise ConfigError("ldm.loss_space: 'v' needs ldm.prediction: v (an eps-model's loss is in eps space)")


@dataclass(frozen=True)
class SampleConfig:
    """How samples are drawn for the run's PNG grid (and, by default, for evaluation)."""

    sampler: str = "ddpm"  # SPEC part 0: ancestral DDPM with T steps is the default
    steps: int | None = None  # DDIM steps (None: 50); DDPM always runs every timestep
    guidance: float = 1.0  # classifier-free guidance weight w: eps = (1 + w) eps_c - w eps_u
    guidance_rule: str = "cfg"  # 'cfg' (the paper's) or 'projected' (ours): models/diffusion/guidance.py
    grid_classes: int = 10  # test classes shown in samples.png
    grid_samples: int = 8  # samples per class in samples.png

    def check(self) -> None:
        _one_of("sample.sampler", self.sampler, SAMPLERS)
        _positive("sample.steps", self.steps, allow_none=True)
        if not math.isfinite(self.guidance) or self.guidance < 0:
            raise ConfigError(f"sample.guidance: must be finite and >= 0, got {self.guidance!r}")
        _one_of("sample.guidance_rule", self.guidance_rule, GUIDANCE_RULES)
        _positive("sample.grid_classes", self.grid_classes)
        _positive("sample.grid_samples", self.grid_samples)


@dataclass(frozen=True)
class TrainConfig:
    preset: str | None = None
    seed: int = 0
    threads: int | None = None  # torch intra-op threads (None: torch's default)
    device: str = "auto"  # 'auto' | 'cpu' | 'cuda' | 'cuda:N'; not part of the result (a run may move devices)
    data: DataConfig = field(default_factory=DataConfig)
    rae: RAEConfig = field(default_factory=RAEConfig)
    ldm: LDMConfig = field(default_factory=LDMConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)

    def check(self) -> None:
        if self.preset is not None:
            _one_of("preset", self.preset, tuple(PRESETS))
        _non_negative("seed", self.seed)
        _positive("threads", self.threads, allow_none=True)
        check_device("device", self.device)
        for part in (self.data, self.rae, self.ldm, self.sample):
            part.check()

    @property
    def latent_size(self) -> int:
        return self.rae.latent_size or DEFAULT_LATENT[self.data.dataset]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Presets are plain override dicts on top of the dataclass defaults (which are the paper's settings).
PRESETS: dict[str, dict[str, Any]] = {
    # SPEC section 9 / design facts 12: 100 epochs of each stage, batch 128, every class.
    "paper": {},
    # A few minutes on 2 CPU cores: 400 training classes (8,000 Omniglot drawings), all 150 test classes
    # (evaluation always uses every test class), few epochs. DDIM keeps the sample grid cheap.
    # Learning rates: the paper's 1e-4 needs its ~20k steps; in the quick preset's few hundred (RAE) and ~2k (LDM)
    # steps it leaves a blurry autoencoder (held-out rec 164 after 2 epochs vs 80 at 1e-3) and a denoiser whose
    # eps at t = 999 is 0.72 x the true one, so sampling diverges (latent std 37 vs 0.9 of the data; every sample
    # noise, recognizability at chance). At 1e-3 / 3e-3 the sampled latents have the data's scale.
    # Since issue 14 the quick preset's LDM uses the standard preset's recipe (schedule, v-prediction, EMA,
    # clipping) at its budget; its RAE keeps the fixed rate 1e-3, in batches of 64.
    "quick": {
        "data": {"train_classes": 400},
        # a few hundred RAE steps: a fixed rate beats the cosine, batches of 64 beat 128 (docs/recipe.md)
        "rae": {"epochs": 6, "lr": 1e-3, "batch_size": 64},
        # peak 3e-3 since 2026-12-07, as the standard preset (1e-3 before: the quickstart's best trial 0.682 -> 0.580
        # on its own autoencoder, v5 critics; docs/recipe.md)
        "ldm": {"epochs": 40, "lr": 3e-3, "lr_schedule": "cosine", "warmup": 0.02, "ema": 0.995, "grad_clip": 1.0,
                "prediction": "v", "loss_space": "v"},
        "sample": {"sampler": "ddim", "steps": 50},
    },
    # Ours, for research on a CPU (docs/recipe.md): every training class, both stages on a warm-up + cosine
    # schedule, a v-predicting denoiser (its loss on the implied eps) whose weights are averaged (EMA) and whose
    # gradient is clipped. Under 15 minutes a trial on 2 cores. Since 2026-12-07 the denoiser trains 60 epochs at
    # peak 3e-3 (until then 40 at 1e-3, which left it short of its ceiling: prototype 100 at 0.323 from people
    # against 0.236, v5 critics); sweeps started before keep their recipe (<sweep dir>/train_resolved.yaml).
    # Since 2026-12-08 the v-output's loss is taken on the eps it implies (the paper's per-step weighting) instead
    # of on v: on the same autoencoders it brought every regularized setting at its best weights nearer people
    # (classification 100 0.207 -> 0.106, prototype 1000 0.281 -> 0.211, Barlow 100 0.410 -> 0.365, seed 0) and no
    # regularizer farther (0.577 -> 0.852); docs/recipe.md, "The denoiser's loss at the standard preset". The quick
    # preset keeps the v loss.
    "standard": {
        "rae": {"epochs": 8, "lr": 2e-3, "lr_schedule": "cosine", "warmup": 0.02},
        "ldm": {"epochs": 60, "lr": 3e-3, "lr_schedule": "cosine", "warmup": 0.02, "ema": 0.999, "grad_clip": 1.0,
                "prediction": "v", "loss_space": "eps"},
        "sample": {"sampler": "ddim", "steps": 50},
    },
}


def build_config(raw: Mapping[str, Any] | None = None) -> TrainConfig:
    """Validate a raw mapping (a parsed YAML file) and return the frozen config, with its preset applied."""
    raw = dict(raw or {})
    preset = raw.get("preset")
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"preset: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    merged = merge(PRESETS[preset] if preset else {}, raw)
    config = _from_mapping(TrainConfig, merged, prefix="")
    config.check()
    return config


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Read a YAML config file; `overrides` (dotted keys, e.g. {'data.data_dir': '/x'}) win over the file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    from models.yamlfile import load_yaml

    try:
        raw = load_yaml(path.read_text()) or {}  # a key written twice is an error, not the last one winning
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    for dotted, value in (overrides or {}).items():
        set_dotted(raw, dotted, value)
    try:
        return build_config(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def config_from_dict(data: Mapping[str, Any]) -> TrainConfig:
    """Rebuild a config saved with `to_dict()` (no preset is re-applied: the saved values are complete)."""
    config = _from_mapping(TrainConfig, dict(data), prefix="")
    config.check()
    return config


# --- validation helpers ---------------------------------------------------------------------------------------


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` on top of `base`, section by section (how a config applies to its preset); a regularizers
    mapping is replaced whole (the preset's weights are not mixed into the config's)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) and key != "regularizers":
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """raw['a']['b']['c'] = value for dotted 'a.b.c', creating (or replacing non-mapping) parents: the one way a
    command-line or searched override lands in a config or sweep mapping."""
    node = raw
    *parents, leaf = dotted.split(".")
    for key in parents:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[leaf] = value


def _from_mapping(cls: type, raw: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "config"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}: unknown key (known: {', '.join(sorted(names))})")
    values = {}
    for name, value in raw.items():
        values[name] = _coerce(f"{prefix}{name}", hints[name], value)
    return cls(**values)


def _coerce(key: str, hint: Any, value: Any) -> Any:
    """Check `value` against a type hint. Only lossless conversions (an int where a float is expected)."""
    if hint is Any:  # checked where its meaning is known (RAEConfig.check: regularizer options)
        return value
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _from_mapping(hint, value, prefix=f"{key}.")
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None:
            if type(None) in options:
                return None
            raise ConfigError(f"{key}: must not be null")
        (inner,) = [o for o in options if o is not type(None)]
        return _coerce(key, inner, value)
    if origin is dict:
        _, value_type = typing.get_args(hint)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
        return {str(k): _coerce(f"{key}.{k}", value_type, v) for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"{key}: unsupported type hint {hint!r}")  # a bug in this file, not in the user's config


def _check_regularizer_options(rae: RAEConfig) -> None:
    """Names against the registry (no torch); option values against the classes' declarations, which imports
    the modules of the regularizers that have options (and torch), only then."""
    where = "rae.regularizer_options"
    for name, given in rae.regularizer_options.items():
        if name not in regularizers.NAMES:
            raise ConfigError(f"{where}.{name}: unknown regularizer; choose from {', '.join(regularizers.NAMES)}")
    if rae.mask_same_class and "mask_same_class" in rae.regularizer_options.get("prototype", {}):
        raise ConfigError(f"{where}.prototype.mask_same_class: also set as rae.mask_same_class (its older "
                          "spelling); set it in one place")
    if not any(rae.regularizer_options.values()):
        return
    from models.regularizers.options import check_options

    values = {}
    for name, given in rae.regularizer_options.items():
        try:
            values[name] = check_options(f"{where}.{name}", regularizers.get(name).options, given)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    # the views are made once a batch: the built view-based regularizers must agree on their pairing
    pairings = {}
    for name in rae.active:
        declared = regularizers.get(name).options
        if "pairing" in declared:
            pairings[name] = values.get(name, {}).get("pairing", declared["pairing"].default)
    if len(set(pairings.values())) > 1:
        name = next(n for n in pairings if "pairing" in rae.regularizer_options.get(n, {}))
        raise ConfigError(f"{where}.{name}.pairing: the view-based regularizers share one pairing, got "
                          + ", ".join(f"{n}: {p}" for n, p in pairings.items()))


def check_device(key: str, value: Any) -> None:
    """A device name as TrainConfig.device accepts it (also for the --device of the CLIs)."""
    if not isinstance(value, str) or not DEVICE_PATTERN.fullmatch(value):
        raise ConfigError(f"{key}: unknown device {value!r}; choose auto, cpu, cuda or cuda:N (N a GPU index)")


def _one_of(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{key}: unknown value {value!r}; choose one of {', '.join(choices)}")


def _schedule(stage: str, schedule: str, warmup: float) -> None:
    _one_of(f"{stage}.lr_schedule", schedule, LR_SCHEDULES)
    if not 0.0 <= warmup < 1.0:
        raise ConfigError(f"{stage}.warmup: must be a fraction of the steps in [0, 1), got {warmup!r}")
    if warmup > 0 and schedule == "constant":
        raise ConfigError(f"{stage}.warmup: {warmup!r} needs {stage}.lr_schedule: cosine (the constant schedule "
                          "has no warm-up)")


def _positive(key: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value is None or not value > 0 or (isinstance(value, float) and not math.isfinite(value)):
        raise ConfigError(f"{key}: must be > 0, got {value!r}")


def _non_negative(key: str, value: Any) -> None:
    if not value >= 0 or (isinstance(value, float) and not math.isfinite(value)):
        raise ConfigError(f"{key}: must be >= 0, got {value!r}")


# --- "the same run?" -----------------------------------------------------------------------------------------
# Settings that do not define a run (threads, the device, where the data lives) may differ on resume: a run started
# on a CPU may be continued on a GPU, a sweep resumed on another machine.
NOT_PART_OF_A_RUN = ("threads", "device", "data.data_dir")


def config_difference(a: TrainConfig, b: TrainConfig) -> str | None:
    """The first setting in which b is another run than a, as 'key: <a's value> before, <b's value> now'; None when
    both define the same run (NOT_PART_OF_A_RUN ignored). Resuming a run directory and a sweep both use it."""
    return _first_difference(_run_defining(a), _run_defining(b))


def _run_defining(cfg: TrainConfig) -> dict[str, Any]:
    d = cfg.to_dict()
    for dotted in NOT_PART_OF_A_RUN:
        *parents, leaf = dotted.split(".")
        node = d
        for key in parents:
            node = node.get(key, {})
        node.pop(leaf, None)
    return d


def _first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = _first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
            if found:
                return found
        return None
    return None if a == b else f"{prefix.rstrip('.')}: {a!r} before, {b!r} now"
