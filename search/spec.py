"""A sweep file (YAML) -> a frozen, fully validated SweepSpec.

    name: quickstart                 # [a-z0-9_-]+ (default: the file name); results go to <root>/<name>
    root: sweeps                     # default 'sweeps', relative to the working directory, or a bucket:
                                     #   s3://bucket/prefix?endpoint_override=host:9000 (search/storage.py)
    description: free text           # optional
    train:                           # a training config as `humanlike train` takes it (models/config.py)
      preset: quick
      data: {dataset: omniglot}
    search:                          # the search space: see search/space.py
      regularizers:
        prototype: {low: 0.1, high: 100}
        barlow: {low: 1, high: 100}
    objective: distance              # 'distance' (minimize the distance to the human point) or 'pareto'
    sampler: {name: tpe, seed: 0, n_startup_trials: 3}   # tpe | gp | random | grid | nsga2 | motpe
                                     # (tpe, mode family: initial_design: families (default) | none)
    n_trials: 6                      # sampler grid: defaults to (and may not exceed) the number of grid points
    max_concurrent: 2                # trials running at once
    resources: {cpu: 1, gpu: 0}      # per trial; fractions allowed
    evaluation: {sampler: ddim, steps: 50, guidance: 1.0}   # defaults: the train config's `sample` section;
                                     #   guidance_rule: cfg (the paper's, default) | projected (ours, docs/recipe.md)
    storage: null                    # null: journal file <sweep dir>/study.journal; 'journal:/nfs/x.journal' (a
                                     #   journal file elsewhere: needed when root is a bucket); 'sqlite:///...';
                                     #   'env:VARNAME' (a database URL read from the environment when the sweep runs:
                                     #   how a PostgreSQL password stays out of the file); a URL with a password in
                                     #   it is refused
    pruner: {name: median, n_startup_trials: 2, n_warmup_steps: 0}   # median | percentile | none
    warm_start:                      # trials run first: given configurations and/or the finished trials of an
      configs: [{w_prototype: 1.0, w_barlow: 10.0}]   # earlier sweep (its directory or a Parquet export)
      parquet: sweeps/earlier
      best: 3                        # only the earlier sweep's 3 configurations nearest to people, nearest first
                                     #   (a cheap screen, e.g. a quick-preset sweep, for a costlier one); with
                                     #   sampler grid the warm start reorders the grid: those of its points first

`load_sweep` checks the whole file before anything starts (the training config is built once, the dataset
directory must exist, the warm-start configurations must lie in the space) and raises one SweepError listing
every mistake found, each prefixed by the key that holds it. Optuna, Ray and torch are not imported here.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from evaluation.distance import NORMALIZATIONS, axis_deviations, distance_to_human
from search.errors import Collector, SweepError
from search.space import SpaceSpec, check_params, grid_points, parse_space

__all__ = [
    "SweepError", "SweepSpec", "SamplerSpec", "WarmStart", "load_sweep", "sweep_from_dict", "objective_values",
    "resolve_storage", "SAMPLERS", "OBJECTIVES",
]

NAME = re.compile(r"[a-z0-9_-]+")
from search.samplers import MULTI_OBJECTIVE_ONLY, SAMPLERS, TAKES_STARTUP_TRIALS  # noqa: E402  (the registry)
OBJECTIVES = ("distance", "pareto")
PRUNERS = ("median", "percentile", "none")
from models.diffusion.guidance import RULES as GUIDANCE_RULES  # noqa: E402  (the registries' names)
from models.diffusion.samplers import NAMES as EVAL_SAMPLERS  # noqa: E402
JOURNAL_PREFIX = "journal:"
STORAGE_SCHEMES = ("postgresql", "postgresql+psycopg2", "postgresql+psycopg", "mysql", "mysql+pymysql", "sqlite")
TOP_KEYS = ("name", "root", "description", "train", "search", "objective", "sampler", "n_trials", "max_concurrent",
            "resources", "evaluation", "storage", "pruner", "warm_start")


INITIAL_DESIGNS = ("families", "none")


@dataclass(frozen=True)
class SamplerSpec:
    name: str = "tpe"
    seed: int = 0
    n_startup_trials: int | None = None  # None: the sampler's own default (TPE and GP: 10)
    population_size: int | None = None  # NSGA-II only (None: Optuna's default, 50)
    # tpe in mode family: 'families' runs every family once (at the middle of its weights) before the sampler's
    # own proposals (search.samplers.initial_design); 'none' leaves the start to the sampler.
    initial_design: str = "families"


@dataclass(frozen=True)
class WarmStart:
    """Trials enqueued before the sampler proposes anything (they are run, not copied: see space.warm_start_params)."""

    configs: tuple[dict[str, Any], ...] = ()  # flat param dicts, as `suggest` returns them
    parquet: tuple[str, ...] = ()  # earlier sweeps' directories or exported Parquet files: their COMPLETE trials
    best: int | None = None  # only the sources' `best` configurations nearest to people, nearest first (a screen;
    # in a pareto sweep by Pareto layer first: search.results.nearest_params)

    def __bool__(self) -> bool:
        return bool(self.configs or self.parquet)


@dataclass(frozen=True, kw_only=True)
class SweepSpec:
    name: str
    root: str = "sweeps"
    description: str = ""
    train: dict[str, Any] = field(default_factory=dict)
    space: SpaceSpec
    sampler: SamplerSpec = field(default_factory=SamplerSpec)
    objective: str = "distance"
    n_trials: int
    max_concurrent: int = 1
    resources: dict[str, float] = field(default_factory=lambda: {"cpu": 1.0, "gpu": 0.0})
    evaluation: dict[str, Any] = field(default_factory=dict)
    storage: str | None = None
    warm_start: WarmStart = field(default_factory=WarmStart)
    pruner: dict[str, Any] = field(default_factory=lambda: {"name": "median", "n_startup_trials": 2,
                                                            "n_warmup_steps": 0})

    def dir(self):
        """<root>/<name>: a Path, or a search.storage.Location when root is a bucket URI."""
        from search.storage import as_path

        return as_path(self.root) / self.name

    def resume_command(self) -> str:
        """The command that continues this sweep, as the CLI tells a user whose sweep stopped."""
        return f"humanlike sweep resume {self.name}" + ("" if self.root == "sweeps" else f" --root {self.root}")

    @property
    def directions(self) -> list[str]:
        """Optuna study directions: one objective (distance) or two (pareto), always minimized."""
        return ["minimize"] if self.objective == "distance" else ["minimize", "minimize"]

    @property
    def dataset(self) -> str:
        return (self.train.get("data") or {}).get("dataset", "omniglot")


def objective_values(objective: str, *, originality: float, recognizability: float, human_originality: float,
                     human_recognizability: float, normalization: str = "relative") -> tuple[float, ...]:
    """The value(s) Optuna minimizes (SPEC part 0: distance to human, each axis divided by the human value).

    'distance': (d,) with d = sqrt(do^2 + dr^2); 'pareto': (|do|, |dr|), where do = (o - o_h) / o_h and
    dr = (r - r_h) / r_h under 'relative' normalization, raw differences under 'absolute'.
    """
    point = dict(human_originality=human_originality, human_recognizability=human_recognizability,
                 normalization=normalization)
    if objective == "distance":
        return (distance_to_human(originality, recognizability, **point),)
    if objective == "pareto":
        return tuple(abs(x) for x in axis_deviations(originality, recognizability, **point))
    raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")


def resolve_storage(spec: SweepSpec) -> str | None:
    """The database URL to open (None: a journal file, see journal_path). Never log the result: `redact` it."""
    if spec.storage is None or spec.storage.startswith(JOURNAL_PREFIX):
        return None
    if not spec.storage.startswith("env:"):
        return spec.storage
    var = spec.storage[4:]
    url = os.environ.get(var)
    if not url:
        raise SweepError(f"storage: environment variable {var} is not set (it should hold the database URL, "
                         "e.g. postgresql://user:password@host:5432/db)")
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in STORAGE_SCHEMES:
        raise SweepError(f"storage: ${var} holds no database URL (scheme {scheme or '(none)'!r}); expected one of "
                         f"{', '.join(STORAGE_SCHEMES)}://...")
    return url


def journal_path(spec: SweepSpec) -> Path | None:
    """The study's journal file (None when the study is in a database): <sweep dir>/study.journal by default."""
    if spec.storage is None:
        return spec.dir() / "study.journal"
    if spec.storage.startswith(JOURNAL_PREFIX):
        return Path(spec.storage[len(JOURNAL_PREFIX):]).expanduser()
    return None


def redact(text: str, url: str | None = None) -> str:
    """`text` with the password of any 'scheme://user:password@host' in it (and `url`'s own) replaced by ***."""
    text = _PASSWORD.sub(lambda m: f"{m.group(1)}***@", text)
    password = _PASSWORD.search(url) if url else None
    if password and len(password.group(2)) >= 4:  # a driver's message quoting the bare password (shorter ones
        text = text.replace(password.group(2), "***")  # would blank out ordinary letters of the message)
    return text


_PASSWORD = re.compile(r"(\w[\w+.-]*://[^:/@\s]*:)([^@\s]*)@")


# --- loading ----------------------------------------------------------------------------------------------------


def load_sweep(path: str | Path, *, overrides: Mapping[str, Any] | None = None) -> SweepSpec:
    """Read and validate a sweep file. `overrides`: dotted keys that win over the file, e.g.
    {'train.data.data_dir': '/data', 'n_trials': 12} (what the CLI's --data-dir / --trials set)."""
    import yaml

    from search.storage import as_path

    path = as_path(path)  # a sweep's saved copy may be in a bucket (sweep resume --root s3://...)
    if not path.is_file():
        raise FileNotFoundError(f"sweep file not found: {path}")
    from models.yamlfile import load_yaml

    try:
        raw = load_yaml(path.read_text())  # a key written twice is an error naming it and both lines
    except yaml.YAMLError as exc:
        raise SweepError(f"{path}: not valid YAML: {exc}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SweepError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    raw.setdefault("name", path.stem)
    _apply_overrides(raw, overrides or {})
    try:
        return sweep_from_dict(raw)
    except SweepError as exc:
        raise SweepError(f"{path}: {exc}") from None


def _apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any]) -> None:
    from models.config import set_dotted

    for dotted, value in overrides.items():
        set_dotted(raw, dotted, value)


def sweep_from_dict(raw: Mapping[str, Any], *, check_data: bool = True) -> SweepSpec:
    """Validate a parsed sweep file. check_data=False skips the dataset-directory check and the settings that
    cannot work together (status, report, the trials themselves)."""
    if not isinstance(raw, Mapping):
        raise SweepError(f"sweep: expected a mapping, got {type(raw).__name__}")
    errors = Collector()
    for key in sorted(set(raw) - set(TOP_KEYS)):
        errors.add(f"{key}: unknown key (known: {', '.join(TOP_KEYS)})")
    name = errors.run(_name, raw.get("name"))
    root = errors.run(_root, raw.get("root", "sweeps"))
    description = errors.run(_string, "description", raw.get("description", "") or "")
    objective = errors.run(_choice, "objective", raw.get("objective", "distance"), OBJECTIVES)
    train, train_cfg = errors.run(_train, raw.get("train")) or (None, None)
    if check_data and train_cfg is not None:
        errors.run(check_dataset, train_cfg)
    sampler = errors.run(_sampler, raw.get("sampler"), objective)
    grid = sampler is not None and sampler.name == "grid"
    space = errors.run(parse_space, raw.get("search"), grid=grid, train=train)
    if sampler is not None and sampler.name == "gp" and space is not None and space.mode == "family":
        errors.add("sampler.name: gp cannot model the conditional space of mode family (it would draw every weight "
                   "at random); use tpe")
    n_points = len(grid_points(space)) if (grid and space is not None) else None
    if grid and space is None and raw.get("n_trials") is None:
        n_trials = None  # the grid's size is unknown until search: is fixed; that mistake is reported already
    else:
        n_trials = errors.run(_n_trials, raw.get("n_trials"), n_points)
    max_concurrent = errors.run(_positive_int, "max_concurrent", raw.get("max_concurrent", 1))
    resources = errors.run(_resources, raw.get("resources"))
    evaluation = errors.run(_evaluation, raw.get("evaluation"), train_cfg)
    storage = errors.run(_storage, raw.get("storage"))
    if root is not None and raw.get("storage") in (None, "journal"):  # the default journal, in the sweep dir
        errors.run(_study_beside, root)
    pruner = errors.run(_pruner, raw.get("pruner"), objective)
    warm = errors.run(_warm_start, raw.get("warm_start"), space)
    # Only for a sweep about to run (check_data): an existing sweep's status and reports, and its trials, read
    # its saved file whatever rules were added since.
    if check_data and None not in (train, space, evaluation, resources):
        for message in conflicts(train, space, evaluation, resources):
            errors.add(message)
    errors.raise_if_any()
    return SweepSpec(name=name, root=root, description=description, train=train, space=space, sampler=sampler,
                     objective=objective, n_trials=n_trials, max_concurrent=max_concurrent, resources=resources,
                     evaluation=evaluation, storage=storage, warm_start=warm, pruner=pruner)


# --- one validator per top-level key; each raises SweepError naming its key --------------------------------------


def _name(value: Any) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise SweepError(f"name: must be lowercase letters, digits, '_' or '-', got {value!r}")
    return value


def _string(key: str, value: Any) -> str:
    if not isinstance(value, str) or (key == "root" and not value):
        raise SweepError(f"{key}: expected a string, got {value!r}")
    return value


def _root(value: Any) -> str:
    from search.storage import check_uri, is_remote

    root = _string("root", value)
    if is_remote(root):
        check_uri(root, "root")
    elif re.match(r"[A-Za-z][A-Za-z0-9+.-]+:/", root) and not root.startswith("file://"):
        raise SweepError(f"root: {root!r} looks like a URI but is not scheme://...; write s3://bucket/prefix, or "
                         "a directory")
    return root


def _study_beside(root: str) -> None:
    """A journal file needs a POSIX filesystem (appends under a lock): not in a bucket."""
    from search.storage import is_remote

    if is_remote(root):
        raise SweepError(f"storage: the study cannot be a journal file in {root} (an object store cannot append "
                         "under a lock); use a database, e.g. storage: env:HUMANLIKE_STUDY_DB with "
                         "HUMANLIKE_STUDY_DB=postgresql://user:password@host/db, or a journal on a shared "
                         "filesystem: storage: journal:/nfs/sweeps/NAME.journal")


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise SweepError(f"{key}: unknown value {value!r}; choose one of {', '.join(choices)}")
    return value


def _mapping(key: str, value: Any, known: tuple[str, ...]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SweepError(f"{key}: expected a mapping, got {type(value).__name__}")
    for k in value:
        if k not in known:
            raise SweepError(f"{key}.{k}: unknown key (known: {', '.join(known)})")
    return dict(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive_int(key: str, value: Any) -> int:
    if not _is_int(value) or value < 1:
        raise SweepError(f"{key}: must be an integer >= 1, got {value!r}")
    return value


def _train(value: Any):
    from models.config import ConfigError, build_config

    if value is None:
        raise SweepError("train: missing (a training config: preset, data, rae, ldm, sample)")
    if not isinstance(value, Mapping):
        raise SweepError(f"train: expected a mapping, got {type(value).__name__}")
    train = _plain(value)
    try:
        cfg = build_config(train)
    except ConfigError as exc:
        raise SweepError(f"train.{exc}") from None
    return train, cfg


def _plain(value: Any) -> Any:
    """A deep copy made of plain dicts and lists (YAML gives those already; callers may pass anything)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def check_dataset(cfg) -> Path:
    """The dataset must be on disk before Ray starts, resolved as models.data.load_dataset does (explicit
    directory, then $HUMANLIKE_DATA_DIR, then ~/.cache/humanlike). Omniglot in the default cache directory may
    be missing: the driver's preflight downloads it there once, before Ray starts (search/preflight.py), and
    loads every dataset in full there."""
    from models.data import resolve_data_dir

    root, is_default = resolve_data_dir(cfg.data.data_dir)
    source = "train.data.data_dir" if cfg.data.data_dir else ("$HUMANLIKE_DATA_DIR" if not is_default else "default")
    name = cfg.data.dataset
    if name == "omniglot" and is_default:
        return root / "omniglot"
    if not root.is_dir():
        raise SweepError(f"train.data.data_dir: data directory {root} (from {source}) does not exist")
    if name == "omniglot":
        from models.data.omniglot import has_omniglot

        ok, where = has_omniglot(root / "omniglot"), root / "omniglot"
    elif name == "quickdraw":
        from models.data.quickdraw import FOLDER, QUICKDRAWJS

        ok, where = (root / FOLDER).is_dir() or (root / QUICKDRAWJS).is_file(), root / FOLDER
    else:
        from models.data.qdfs import FILE

        ok, where = (root / FILE).is_file(), root / FILE
    if not ok:
        raise SweepError(f"train.data.dataset: {name} not found in {root} (from {source}): {where} is missing "
                         "or incomplete (README, Data)")
    return where


def _sampler(value: Any, objective: str | None) -> SamplerSpec:
    if isinstance(value, str):  # shorthand: `sampler: gp`
        value = {"name": value}
    raw = _mapping("sampler", value, ("name", "seed", "n_startup_trials", "population_size", "initial_design"))
    name = _choice("sampler.name", raw.get("name", "tpe"), SAMPLERS)
    if name in MULTI_OBJECTIVE_ONLY and objective == "distance":
        raise SweepError(f"sampler.name: {name} searches a Pareto front; use it with objective: pareto")
    seed = raw.get("seed", 0)
    if not _is_int(seed) or seed < 0:
        raise SweepError(f"sampler.seed: must be an integer >= 0, got {seed!r}")
    startup = raw.get("n_startup_trials")
    if startup is not None and (not _is_int(startup) or startup < 0):
        raise SweepError(f"sampler.n_startup_trials: must be an integer >= 0, got {startup!r}")
    if startup is not None and name not in TAKES_STARTUP_TRIALS:
        raise SweepError(f"sampler.n_startup_trials: not used by sampler {name}")
    population = raw.get("population_size")
    if population is not None and (name != "nsga2" or not _is_int(population) or population < 2):
        raise SweepError(f"sampler.population_size: an integer >= 2, for sampler nsga2 only; got {population!r}")
    design = _choice("sampler.initial_design", raw.get("initial_design", "families"), INITIAL_DESIGNS)
    return SamplerSpec(name=name, seed=seed, n_startup_trials=startup, population_size=population,
                       initial_design=design)


def _n_trials(value: Any, n_points: int | None) -> int:
    if n_points is not None:
        if value is None:
            return n_points
        _positive_int("n_trials", value)
        if value > n_points:
            raise SweepError(f"n_trials: {value} is more than the {n_points} grid points; add values to the grid")
        return value
    if value is None:
        raise SweepError("n_trials: missing (the number of trials to run)")
    return _positive_int("n_trials", value)


def _resources(value: Any) -> dict[str, float]:
    raw = _mapping("resources", value, ("cpu", "gpu"))
    cpu, gpu = raw.get("cpu", 1), raw.get("gpu", 0)
    if not _is_number(cpu) or cpu <= 0:
        raise SweepError(f"resources.cpu: must be a number > 0 (fractions allowed), got {cpu!r}")
    if not _is_number(gpu) or gpu < 0:
        raise SweepError(f"resources.gpu: must be a number >= 0 (fractions allowed), got {gpu!r}")
    return {"cpu": float(cpu), "gpu": float(gpu)}


def _evaluation(value: Any, train_cfg) -> dict[str, Any]:
    raw = _mapping("evaluation", value, ("sampler", "steps", "guidance", "guidance_rule", "normalization", "critics"))
    sample = train_cfg.sample if train_cfg is not None else None
    out = {
        # DDPM unless the file asks (SPEC part 0): the preset's sample-grid sampler draws a picture, not the score
        "sampler": raw.get("sampler", "ddpm"),
        "steps": raw.get("steps", sample.steps if sample and sample.sampler == "ddim" else None),
        "guidance": raw.get("guidance", sample.guidance if sample else 1.0),
        "guidance_rule": raw.get("guidance_rule", sample.guidance_rule if sample else "cfg"),
        "normalization": raw.get("normalization", "relative"),
        "critics": raw.get("critics"),
    }
    _choice("evaluation.sampler", out["sampler"], EVAL_SAMPLERS)
    if out["sampler"] == "ddpm":  # ancestral DDPM always runs every timestep (models/config.py SampleConfig)
        if raw.get("steps") is not None:
            raise SweepError("evaluation.steps: DDPM runs every timestep; steps is for sampler ddim")
        out["steps"] = None
    if out["steps"] is not None and (not _is_int(out["steps"]) or out["steps"] < 1):
        raise SweepError(f"evaluation.steps: must be an integer >= 1 or null, got {out['steps']!r}")
    if not _is_number(out["guidance"]) or out["guidance"] < 0:
        raise SweepError(f"evaluation.guidance: must be a number >= 0, got {out['guidance']!r}")
    out["guidance"] = float(out["guidance"])
    _choice("evaluation.guidance_rule", out["guidance_rule"], GUIDANCE_RULES)
    _choice("evaluation.normalization", out["normalization"], NORMALIZATIONS)
    if out["critics"] is not None and not isinstance(out["critics"], str):
        raise SweepError(f"evaluation.critics: expected a path or null, got {out['critics']!r}")
    return out


def _storage(value: Any) -> str | None:
    if value is None or value == "journal":
        return None
    if not isinstance(value, str):
        raise SweepError(f"storage: expected null, 'env:VARNAME', 'journal:PATH' or a database URL, got {value!r}")
    if value.startswith("env:"):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value[4:]):
            raise SweepError(f"storage: {value!r} is not env:VARNAME")
        return value
    if value.startswith(JOURNAL_PREFIX):
        from search.storage import is_remote

        path = value[len(JOURNAL_PREFIX):]
        if not path or is_remote(path):
            raise SweepError(f"storage: {value!r}: a journal file needs a local or shared (NFS) path, e.g. "
                             "journal:/nfs/sweeps/NAME.journal")
        return value
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme not in STORAGE_SCHEMES:
        raise SweepError(f"storage: unsupported URL scheme {scheme or value!r}; use null (a journal file in the "
                         f"sweep directory), journal:PATH, env:VARNAME, or one of {', '.join(STORAGE_SCHEMES)}")
    match = _PASSWORD.search(value)
    if match and match.group(2):
        raise SweepError(f"storage: {redact(value)!r} holds a password, which would be saved with the sweep; put the "
                         "URL in an environment variable and write storage: env:VARNAME")
    return value


def _pruner(value: Any, objective: str | None) -> dict[str, Any]:
    if isinstance(value, str):  # shorthand: `pruner: none`
        value = {"name": value}
    raw = _mapping("pruner", value, ("name", "n_startup_trials", "n_warmup_steps", "percentile"))
    # Optuna cannot prune multi-objective trials (Trial.should_prune raises), so pareto defaults to none.
    default = "none" if objective == "pareto" else "median"
    name = _choice("pruner.name", raw.get("name", default), PRUNERS)
    if name != "none" and objective == "pareto":
        raise SweepError(f"pruner.name: {name} cannot prune a multi-objective (pareto) study; use none")
    if name == "none":
        extra = sorted(set(raw) - {"name"})
        if extra:
            raise SweepError(f"pruner.{extra[0]}: not used by pruner none")
        return {"name": "none"}
    out = {"name": name, "n_startup_trials": raw.get("n_startup_trials", 2),
           "n_warmup_steps": raw.get("n_warmup_steps", 0)}
    for key in ("n_startup_trials", "n_warmup_steps"):
        if not _is_int(out[key]) or out[key] < 0:
            raise SweepError(f"pruner.{key}: must be an integer >= 0, got {out[key]!r}")
    if name == "percentile":
        pct = raw.get("percentile", 25.0)
        if not _is_number(pct) or not 0 < pct < 100:
            raise SweepError(f"pruner.percentile: must be a number in (0, 100), got {pct!r}")
        out["percentile"] = float(pct)
    elif "percentile" in raw:
        raise SweepError("pruner.percentile: only for pruner percentile")
    return out


def _warm_start(value: Any, space: SpaceSpec | None) -> WarmStart:
    raw = _mapping("warm_start", value, ("configs", "parquet", "best"))
    configs = raw.get("configs") or []
    if not isinstance(configs, list):
        raise SweepError(f"warm_start.configs: expected a list of parameter mappings, got {type(configs).__name__}")
    checked = []
    for i, config in enumerate(configs):
        if not isinstance(config, Mapping):
            raise SweepError(f"warm_start.configs[{i}]: expected a mapping of parameters, got {config!r}")
        if space is not None:
            check_params(space, dict(config), key=f"warm_start.configs[{i}]")
        checked.append(dict(config))
    parquet = raw.get("parquet") or []
    parquet = [parquet] if isinstance(parquet, str) else parquet
    if not isinstance(parquet, list) or not all(isinstance(p, str) for p in parquet):
        raise SweepError(f"warm_start.parquet: expected a path or a list of paths, got {raw.get('parquet')!r}")
    from search.storage import check_uri, is_remote

    for p in parquet:
        if is_remote(p):  # an earlier sweep in a bucket: read (through pyarrow) when the driver starts
            check_uri(p, "warm_start.parquet")
        elif not Path(p).exists():
            raise SweepError(f"warm_start.parquet: {p} does not exist (a sweep directory or a Parquet file)")
    best = raw.get("best")
    if best is not None:
        if isinstance(best, bool) or not isinstance(best, int) or best < 1:
            raise SweepError(f"warm_start.best: expected a whole number >= 1, got {best!r}")
        if not parquet:
            raise SweepError("warm_start.best: ranks an earlier sweep's trials; give warm_start.parquet too")
    return WarmStart(configs=tuple(checked), parquet=tuple(parquet), best=best)


# --- settings that are each valid but cannot work together --------------------------------------------------------

DDIM_DEFAULT_STEPS = 50  # models.diffusion.ddim.DEFAULT_STEPS (kept torch-free here)
MAX_CORNERS = 256


def conflicts(train: Mapping[str, Any], space: SpaceSpec, evaluation: Mapping[str, Any],
              resources: Mapping[str, float]) -> list[str]:
    """Messages for combinations that no trial could run, checked at every corner of the search space (the ends
    of each searched range, every listed choice): each names the keys involved and what to change."""
    from types import SimpleNamespace

    from search.space import evaluation_for, train_config_for

    spec = SimpleNamespace(train=train, space=space, evaluation=evaluation)
    found: dict[str, list[str]] = {}  # message -> the corners where it happens
    corners = 0
    for params, where in _corners(space):
        try:
            cfg, ev = train_config_for(spec, params), evaluation_for(spec, params)
        except Exception:  # noqa: BLE001 - a value the space's own checks report (or a trial's own FAIL)
            continue
        corners += 1
        for message in _conflicts_of(cfg, ev, resources):
            found.setdefault(message, []).append(where)
    # Everywhere: the message alone; only in part of the space: where (the first such corner).
    return [m if len(w) == corners else m + w[0] for m, w in found.items()]


def _conflicts_of(cfg, ev: Mapping[str, Any], resources: Mapping[str, float]) -> list[str]:
    out = []
    T = cfg.ldm.timesteps
    if T < 2:
        out.append(f"train.ldm.timesteps: {T}; the noise schedule needs at least 2 timesteps")
    if cfg.sample.sampler == "ddim" and (cfg.sample.steps or DDIM_DEFAULT_STEPS) > T:
        out.append(f"train.sample.steps: DDIM with {cfg.sample.steps or DDIM_DEFAULT_STEPS} steps, but the diffusion "
                   f"has train.ldm.timesteps {T}; DDIM takes at most one step per timestep: lower the steps or "
                   "raise the timesteps")
    if cfg.sample.sampler == "ddpm" and cfg.sample.steps is not None and cfg.sample.steps != T:
        out.append(f"train.sample.steps: {cfg.sample.steps} with sampler ddpm, which runs every one of the "
                   f"{T} timesteps; remove steps or use sampler ddim")
    if ev.get("sampler") == "ddim":
        steps = ev.get("steps") or (cfg.sample.steps if cfg.sample.sampler == "ddim" else None) or DDIM_DEFAULT_STEPS
        if steps > T:
            out.append(f"evaluation.steps: DDIM with {steps} steps, but the diffusion has train.ldm.timesteps {T}; "
                       "DDIM takes at most one step per timestep: lower evaluation.steps or raise the timesteps")
    if cfg.ldm.drop_prob == 0:
        for key, w in (("evaluation.guidance", ev.get("guidance") or 0.0), ("train.sample.guidance", cfg.sample.guidance)):
            if w > 0:
                out.append(f"{key}: {w:g} needs the unconditional prediction, which the LDM never learns with "
                           "train.ldm.drop_prob 0 (the null condition is never trained): set drop_prob > 0 (the "
                           "paper: 0.1) or guidance 0")
    if cfg.device.startswith("cuda") and not resources.get("gpu"):
        out.append(f"train.device: {cfg.device} but resources.gpu is 0, so Ray gives a trial no GPU "
                   "(CUDA_VISIBLE_DEVICES is empty): set resources.gpu (e.g. 1 or 0.25) or device auto")
    return out


def _corners(space: SpaceSpec):
    """(params, ' (at search point ...)' or '') for each corner of the searched non-weight dimensions; the
    weights sit at their lowest value (they change no setting checked here). At most MAX_CORNERS of them."""
    import itertools

    from search.space import Choice, Range, searched

    def ends(dim):
        return [dim.low, dim.high] if isinstance(dim, Range) else list(dim.choices) if isinstance(dim, Choice) else []

    base: dict[str, Any] = {}
    if space.mode == "family":
        family, dim = next(iter(space.families.items()))
        base["family"] = family
        if searched(dim):
            base[f"w_{family}"] = ends(dim)[0]
    else:
        base.update({f"w_{r}": ends(d)[0] for r, d in space.regularizers.items() if searched(d)})
    names = [n for n, d in space.params.items() if searched(d)]
    for values in itertools.islice(itertools.product(*(ends(space.params[n]) for n in names)), MAX_CORNERS):
        point = dict(zip(names, values))
        where = (" (at search.params " + ", ".join(f"{k}={v!r}" for k, v in point.items()) + ")") if point else ""
        yield {**base, **point}, where
