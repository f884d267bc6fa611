"""The search space of a sweep: which regularizer weights and other parameters a trial gets.

The `search:` section of a sweep file, in one of two modes:

    search:                                  # mode weights (the default): every listed weight at once
      regularizers:
        prototype: {low: 0.1, high: 100}     # a weight range, log-uniform unless `log: false`
        barlow: {low: 1.0, high: 100}
        kl: 0                                # a fixed weight (a bare number, or {value: 0}); 0 = not there
        simclr: {choices: [0.1, 1.0, 10.0]}  # a list of weights
      params:                                # optional other parameters (linear unless `log: true`)
        guidance: {low: 0, high: 4}
        latent_size: {choices: [32, 64, 128]}

    search:                                  # mode family: the regularizer family first, then its weight
      mode: family                           #   (optional: implied by `families`)
      families:                              # keys: none and the registered regularizers (the paper's seven)
        none: {}
        kl: {low: 1.0e-3, high: 10}          # YAML reads 1e-3 as text: write 1.0e-3
        prototype: {low: 0.1, high: 100}
        barlow: 10.0                         # this family with a fixed weight

Trial parameters (Optuna names, the results' `param.<name>` columns): mode weights `w_<regularizer>` for each
searched weight; mode family `family` and `w_<family>` (only in trials of that family: a conditional,
define-by-run space); other parameters by their own name. Fixed values are not trial parameters: they come from
the space when the training config is built.

Other parameters: `guidance` (evaluation and sample-grid guidance weight w), `latent_size`, `augmentation`,
`mask_same_class`, `seed`, any training key `rae.<key>`, `ldm.<key>` or `sample.<key>` (e.g. `rae.lr`, `ldm.width`;
not `rae.regularizers`), a regularizer's option `rae.regularizer_options.<regularizer>.<option>` (e.g.
`rae.regularizer_options.simclr.tau`; its type and range are the ones the regularizer class declares), and
`evaluation.steps` / `evaluation.sampler`. Integer keys get integer ranges.

The regularizer names (weights, families) and the diffusion samplers are the registries' (models.regularizers,
models.diffusion.samplers): a regularizer added there is searchable here without a change.

Sampler grid (the paper's protocol): every searched dimension must be a list (`choices`); mode weights runs their
product, mode family the union over families of (family, each of its weights), each times the product of the
other parameters' lists. `grid_points` enumerates them in file order.
"""
from __future__ import annotations

import copy
import itertools
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

from models import regularizers  # the registry: read regularizers.NAMES where it is used (entries may be added)
from models.diffusion.samplers import NAMES as DIFFUSION_SAMPLERS
from models.config import set_dotted
from search.errors import SweepError

MODES = ("weights", "family")
# Short names of other parameters -> where they go ('train.<dotted>' or 'evaluation.<key>').
ALIASES = {
    "latent_size": "train.rae.latent_size",
    "augmentation": "train.rae.augmentation",
    "mask_same_class": "train.rae.mask_same_class",
    "seed": "train.seed",
    "guidance": "evaluation.guidance",
}
EVALUATION_PARAMS = {"evaluation.guidance": float, "evaluation.steps": int, "evaluation.sampler": str}


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool = False
    integer: bool = False


@dataclass(frozen=True)
class Choice:
    choices: tuple


@dataclass(frozen=True)
class Fixed:
    value: Any


Dim = Range | Choice | Fixed


def searched(dim: Dim | None) -> bool:
    return isinstance(dim, (Range, Choice))


@dataclass(frozen=True)
class SpaceSpec:
    mode: str = "weights"
    regularizers: dict[str, Dim] = field(default_factory=dict)  # mode weights: regularizer -> weight
    families: dict[str, Dim | None] = field(default_factory=dict)  # mode family: family -> weight (None: 'none')
    params: dict[str, Dim] = field(default_factory=dict)  # other parameter name -> dimension

    def param_names(self) -> list[str]:
        """Every name a trial may carry, in suggestion order."""
        if self.mode == "family":
            names = ["family"] + [f"w_{f}" for f, d in self.families.items() if searched(d)]
        else:
            names = [f"w_{r}" for r, d in self.regularizers.items() if searched(d)]
        return names + [p for p, d in self.params.items() if searched(d)]


# --- parsing ----------------------------------------------------------------------------------------------------


def parse_space(raw: Any, *, grid: bool = False, train: Mapping[str, Any] | None = None) -> SpaceSpec:
    """Validate the `search:` section. grid: every searched dimension must be a list. train: the raw training
    config (None when it was invalid), used to check parameter values and conflicts with fixed settings."""
    if not isinstance(raw, Mapping):
        raise SweepError(f"search: expected a mapping with regularizers or families, got {raw!r}")
    for key in raw:
        if key not in ("mode", "regularizers", "families", "params"):
            raise SweepError(f"search.{key}: unknown key (known: mode, regularizers, families, params)")
    mode = raw.get("mode", "family" if "families" in raw else "weights")
    if mode not in MODES:
        raise SweepError(f"search.mode: unknown value {mode!r}; choose one of {', '.join(MODES)}")
    train_regs = ((train or {}).get("rae") or {}).get("regularizers") or {}
    families, regularizers = {}, {}
    if mode == "family":
        if "regularizers" in raw:
            raise SweepError("search.regularizers: not used in mode family (list the settings under families)")
        if train_regs:
            raise SweepError("train.rae.regularizers: in mode family the family sets the regularizers; remove it")
        families = _families(raw.get("families"), grid)
    else:
        if "families" in raw:
            raise SweepError("search.families: only in mode family")
        regularizers = _regularizers(raw.get("regularizers"), grid, train_regs)
    space = SpaceSpec(mode=mode, regularizers=regularizers, families=families,
                      params=_params(raw.get("params"), grid, train))
    if not space.param_names():
        raise SweepError("search: nothing to search (every value is fixed); give a range or a list somewhere")
    return space


def families() -> tuple[str, ...]:
    """The settings of mode family: 'none' and every registered regularizer, in registry order."""
    return ("none", *regularizers.NAMES)


def _families(raw: Any, grid: bool) -> dict[str, Dim | None]:
    known = families()
    if not isinstance(raw, Mapping) or not raw:
        raise SweepError(f"search.families: expected a mapping of settings ({', '.join(known)}), got {raw!r}")
    out: dict[str, Dim | None] = {}
    for name, value in raw.items():
        key = f"search.families.{name}"
        if name not in known:
            raise SweepError(f"{key}: unknown regularizer; choose from {', '.join(known)}")
        if name == "none":
            if value not in (None, {}):
                raise SweepError(f"{key}: the setting without a regularizer has no weight; write none: {{}}")
            out[name] = None
            continue
        if value is None or value == {}:
            raise SweepError(f"{key}: needs a weight: a range {{low, high}}, {{choices: [...]}} or a number")
        out[name] = _dim(key, value, kind=float, log_default=True, weight=True, grid=grid)
    return out


def _regularizers(raw: Any, grid: bool, train_regs: Mapping[str, Any]) -> dict[str, Dim]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise SweepError(f"search.regularizers: expected a mapping regularizer -> weight, got {raw!r}")
    out = {}
    for name, value in raw.items():
        key = f"search.regularizers.{name}"
        if name not in regularizers.NAMES:
            hint = " ('none' is a setting of mode family)" if name == "none" else ""
            raise SweepError(f"{key}: unknown regularizer; choose from {', '.join(regularizers.NAMES)}{hint}")
        if name in train_regs:
            raise SweepError(f"{key}: also set in train.rae.regularizers; set it in one place")
        out[name] = _dim(key, value, kind=float, log_default=True, weight=True, grid=grid)
    return out


def _params(raw: Any, grid: bool, train: Mapping[str, Any] | None) -> dict[str, Dim]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise SweepError(f"search.params: expected a mapping name -> range, got {raw!r}")
    out = {}
    for name, value in raw.items():
        key = f"search.params.{name}"
        target = param_target(name, key)
        kind = _target_type(target, key)
        dim = _dim(key, value, kind=kind, log_default=False, weight=False, grid=grid)
        if target.startswith("train.") and train is not None:
            _check_train_values(key, target, dim, train)
        elif target.startswith("evaluation."):
            _check_evaluation_values(key, target, dim)
        out[name] = dim
    return out


def param_target(name: str, key: str = "search.params") -> str:
    """'train.<dotted key>' or 'evaluation.<key>' for a parameter name (see the module docstring)."""
    if name in ALIASES:
        return ALIASES[name]
    if name in EVALUATION_PARAMS:
        return name
    head = name.split(".", 1)[0]
    if head in ("rae", "ldm", "sample") and name != "rae.regularizers" and "." in name:
        return f"train.{name}"
    raise SweepError(f"{key}: unknown parameter; use {', '.join(ALIASES)}, evaluation.steps, evaluation.sampler "
                     "or a training key rae.<key>, ldm.<key>, sample.<key>, rae.regularizer_options.<name>.<option>")


def _target_type(target: str, key: str) -> type:
    if target.startswith("evaluation."):
        return EVALUATION_PARAMS[target]
    from models.config import TrainConfig

    parts = target.split(".")[1:]
    if parts[:2] == ["rae", "regularizer_options"]:
        return _option_type(parts[2:], key)
    cls: Any = TrainConfig
    for part in parts:
        hints = typing.get_type_hints(cls) if isinstance(cls, type) else {}
        if part not in hints:
            raise SweepError(f"{key}: {target[6:]} is not a training setting")
        cls = hints[part]
        args = [a for a in typing.get_args(cls) if a is not type(None)]
        if typing.get_origin(cls) in (typing.Union, types.UnionType) and len(args) == 1:
            cls = args[0]  # X | None -> X
    if cls not in (int, float, str, bool):
        raise SweepError(f"{key}: {target[6:]} is not a single setting that can be searched")
    return cls


def _option_type(parts: list[str], key: str) -> type:
    """The type of rae.regularizer_options.<name>.<option>, as the regularizer class declares it (imports it)."""
    if len(parts) != 2 or parts[0] not in regularizers.NAMES:
        raise SweepError(f"{key}: expected rae.regularizer_options.<regularizer>.<option>, the regularizer one of "
                         f"{', '.join(regularizers.NAMES)}")
    name, option = parts
    declared = regularizers.get(name).options
    if option not in declared:
        raise SweepError(f"{key}: {name} has no option {option} (options: {', '.join(declared) or 'none'})")
    return declared[option].type


def _number(key: str, value: Any, kind: type) -> float | int:
    if isinstance(value, str):
        try:
            float(value)
            hint = f" (YAML reads {value} as text: write it with a decimal point, e.g. 1.0e-3)"
        except ValueError:
            hint = ""
        raise SweepError(f"{key}: expected a number, got {value!r}{hint}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SweepError(f"{key}: expected a finite number, got {value!r}")
    if kind is int:
        if not isinstance(value, int):
            raise SweepError(f"{key}: expected an integer, got {value!r}")
        return value
    return float(value)


def _value(key: str, value: Any, kind: type, weight: bool) -> Any:
    """One value of a dimension, checked against its type (and >= 0 for weights)."""
    if kind in (int, float):
        out = _number(key, value, kind)
        if weight and out < 0:
            raise SweepError(f"{key}: a weight must be >= 0, got {value!r}")
        return out
    if not isinstance(value, kind):
        raise SweepError(f"{key}: expected {kind.__name__}, got {value!r}")
    return value


def _dim(key: str, value: Any, *, kind: type, log_default: bool, weight: bool, grid: bool) -> Dim:
    if not isinstance(value, Mapping):
        return Fixed(_value(key, value, kind, weight))
    keys = set(value)
    if keys == {"value"}:
        return Fixed(_value(f"{key}.value", value["value"], kind, weight))
    if "choices" in keys:
        if keys != {"choices"}:
            raise SweepError(f"{key}: choices cannot be mixed with {', '.join(sorted(keys - {'choices'}))}")
        choices = value["choices"]
        if not isinstance(choices, list) or not choices:
            raise SweepError(f"{key}.choices: expected a non-empty list, got {choices!r}")
        out = tuple(_value(f"{key}.choices[{i}]", c, kind, weight) for i, c in enumerate(choices))
        if len(set(out)) != len(out):
            raise SweepError(f"{key}.choices: listed twice: {out!r}")
        return Choice(out)
    unknown = sorted(keys - {"low", "high", "log"})
    if unknown or not {"low", "high"} <= keys:
        what = f"unknown key {unknown[0]}" if unknown else "a range needs both low and high"
        raise SweepError(f"{key}: {what} (write {{low, high[, log]}}, {{choices: [...]}} or {{value: x}})")
    if grid:
        raise SweepError(f"{key}: sampler grid needs a list of values ({{choices: [...]}}), not a range")
    if kind not in (int, float):
        raise SweepError(f"{key}: a {kind.__name__} setting has no range; use {{choices: [...]}}")
    low = _value(f"{key}.low", value["low"], kind, weight)
    high = _value(f"{key}.high", value["high"], kind, weight)
    log = value.get("log", log_default)
    if not isinstance(log, bool):
        raise SweepError(f"{key}.log: expected true or false, got {log!r}")
    if not low < high:
        raise SweepError(f"{key}: empty or inverted range: low {low!r} must be below high {high!r}")
    if log and low <= 0:
        raise SweepError(f"{key}.low: a log-uniform range needs low > 0, got {low!r} (fix a zero weight with value: 0)")
    return Range(low=low, high=high, log=log, integer=kind is int)


def _values_of(dim: Dim) -> list[Any]:
    if isinstance(dim, Range):
        return [dim.low, dim.high]
    return list(dim.choices) if isinstance(dim, Choice) else [dim.value]


def _get_dotted(raw: Mapping[str, Any], dotted: str) -> Any:
    node: Any = raw
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _check_train_values(key: str, target: str, dim: Dim, train: Mapping[str, Any]) -> None:
    """Build the training config with each extreme/choice so that out-of-range values stop here, not in a trial."""
    from models.config import ConfigError, build_config

    dotted = target[len("train."):]
    if _get_dotted(train, dotted) is not None:
        raise SweepError(f"{key}: also set in train.{dotted}; set it in one place")
    for v in _values_of(dim):
        raw = copy.deepcopy(dict(train))
        set_dotted(raw, dotted, v)
        try:
            build_config(raw)
        except ConfigError as exc:
            raise SweepError(f"{key}: value {v!r} is not a valid training setting ({exc})") from None


def _check_evaluation_values(key: str, target: str, dim: Dim) -> None:
    for v in _values_of(dim):
        if target == "evaluation.guidance" and v < 0:
            raise SweepError(f"{key}: guidance must be >= 0, got {v!r}")
        if target == "evaluation.steps" and v < 1:
            raise SweepError(f"{key}: steps must be >= 1, got {v!r}")
        if target == "evaluation.sampler" and v not in DIFFUSION_SAMPLERS:
            raise SweepError(f"{key}: unknown diffusion sampler {v!r}; choose one of {', '.join(DIFFUSION_SAMPLERS)}")


# --- trials: suggest, grid, parameter checks ----------------------------------------------------------------------


def _suggest_dim(trial, name: str, dim: Dim) -> Any:
    if isinstance(dim, Choice):
        return trial.suggest_categorical(name, list(dim.choices))
    if dim.integer:
        return trial.suggest_int(name, int(dim.low), int(dim.high), log=dim.log)
    return trial.suggest_float(name, dim.low, dim.high, log=dim.log)


def suggest(trial, space: SpaceSpec) -> dict[str, Any]:
    """Define-by-run: ask `trial` (an optuna.Trial) for every searched parameter. Returns exactly the trial's
    params, e.g. {'family': 'prototype', 'w_prototype': 3.2, 'guidance': 1.0}; fixed values are not included."""
    params: dict[str, Any] = {}
    if space.mode == "family":
        family = trial.suggest_categorical("family", list(space.families))
        params["family"] = family
        dim = space.families[family]
        if searched(dim):  # conditional: this weight exists only in trials of this family
            params[f"w_{family}"] = _suggest_dim(trial, f"w_{family}", dim)
    else:
        for name, dim in space.regularizers.items():
            if searched(dim):
                params[f"w_{name}"] = _suggest_dim(trial, f"w_{name}", dim)
    for name, dim in space.params.items():
        if searched(dim):
            params[name] = _suggest_dim(trial, name, dim)
    return params


def grid_points(space: SpaceSpec) -> list[dict[str, Any]]:
    """Every configuration of a grid space (all searched dimensions are lists), in file order."""
    def choices(dim: Dim, where: str) -> tuple:
        if isinstance(dim, Range):
            raise ValueError(f"{where}: a range cannot be enumerated")
        return dim.choices

    other = [(n, choices(d, f"search.params.{n}")) for n, d in space.params.items() if searched(d)]
    if space.mode == "family":
        heads = []
        for family, dim in space.families.items():
            if searched(dim):
                heads += [{"family": family, f"w_{family}": w} for w in choices(dim, f"search.families.{family}")]
            else:
                heads.append({"family": family})
    else:
        dims = [(f"w_{n}", choices(d, f"search.regularizers.{n}")) for n, d in space.regularizers.items()
                if searched(d)]
        heads = [dict(zip([n for n, _ in dims], combo)) for combo in itertools.product(*[c for _, c in dims])]
    tails = [dict(zip([n for n, _ in other], combo)) for combo in itertools.product(*[c for _, c in other])]
    return [{**h, **t} for h in heads for t in tails]


def dims_by_name(space: SpaceSpec) -> dict[str, Dim]:
    """Searched dimensions by trial parameter name ('family' excluded)."""
    dims: dict[str, Dim] = {}
    if space.mode == "family":
        dims.update({f"w_{f}": d for f, d in space.families.items() if searched(d)})
    else:
        dims.update({f"w_{r}": d for r, d in space.regularizers.items() if searched(d)})
    dims.update({p: d for p, d in space.params.items() if searched(d)})
    return dims


def _contains(dim: Dim, value: Any) -> bool:
    if isinstance(dim, Choice):
        return any(_same(value, c) for c in dim.choices)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if dim.integer and not float(value).is_integer():
        return False
    return dim.low <= value <= dim.high


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):  # True == 1 in Python; not here
        return a is b
    return a == b


def check_params(space: SpaceSpec, params: Mapping[str, Any], *, key: str = "params") -> None:
    """A (possibly partial) configuration lies in the space: known names, values inside their dimensions, and in
    mode family no weight of another family. Missing names are left to the sampler."""
    dims = dims_by_name(space)
    family = params.get("family")
    if space.mode == "family" and "family" in params and family not in space.families:
        raise SweepError(f"{key}.family: {family!r} is not one of the families {', '.join(space.families)}")
    for name, value in params.items():
        if name == "family" and space.mode == "family":
            continue
        if name not in dims:
            raise SweepError(f"{key}.{name}: not a searched parameter (searched: {', '.join(space.param_names())})")
        if space.mode == "family" and name.startswith("w_") and family != name[2:]:
            raise SweepError(f"{key}.{name}: belongs to family {name[2:]}; give family: {name[2:]} with it")
        if not _contains(dims[name], value):
            raise SweepError(f"{key}.{name}: {value!r} lies outside the space ({dims[name]})")


# --- from trial parameters to a training config and an evaluation -----------------------------------------------


def _value_of(params: Mapping[str, Any], name: str, dim: Dim | None) -> Any:
    if not searched(dim):
        return dim.value if isinstance(dim, Fixed) else None
    if name not in params:
        raise ValueError(f"params: missing {name!r} (got {', '.join(params) or 'nothing'})")
    return params[name]


def regularizer_weights(space: SpaceSpec, params: Mapping[str, Any]) -> dict[str, float]:
    """The searched and fixed regularizer weights of one trial (mode family: only its family's)."""
    if space.mode == "family":
        family = params.get("family")
        if family not in space.families:
            raise ValueError(f"params.family: {family!r} is not one of {', '.join(space.families)}")
        if family == "none":
            return {}
        return {family: float(_value_of(params, f"w_{family}", space.families[family]))}
    return {r: float(_value_of(params, f"w_{r}", d)) for r, d in space.regularizers.items()}


def train_config_for(spec, params: Mapping[str, Any]):
    """The trial's models.config.TrainConfig: the sweep's training config plus this trial's parameters."""
    from models.config import build_config

    raw = copy.deepcopy(spec.train)
    regs = dict(((raw.get("rae") or {}).get("regularizers")) or {})
    regs.update(regularizer_weights(spec.space, params))
    set_dotted(raw, "rae.regularizers", regs)
    for name, dim in spec.space.params.items():
        target, value = param_target(name), _value_of(params, name, dim)
        if target.startswith("train."):
            set_dotted(raw, target[len("train."):], value)
    evaluation = evaluation_for(spec, params)  # the run's sample grid shows the guidance that is evaluated
    set_dotted(raw, "sample.guidance", evaluation["guidance"])
    set_dotted(raw, "sample.guidance_rule", evaluation["guidance_rule"])
    return build_config(raw)


def evaluation_for(spec, params: Mapping[str, Any]) -> dict[str, Any]:
    """The sweep's evaluation settings with this trial's searched or fixed evaluation parameters applied."""
    out = dict(spec.evaluation)
    for name, dim in spec.space.params.items():
        target = param_target(name)
        if target.startswith("evaluation."):
            out[target[len("evaluation."):]] = _value_of(params, name, dim)
    return out
