"""Optuna samplers and pruners for a SweepSpec.

    tpe     TPESampler(multivariate, constant_liar; group=True in mode family, where the space is conditional)
    gp      GPSampler (low-dimensional continuous spaces such as two weights; needs scipy)
    random  RandomSampler
    grid    GridPointsSampler: the listed configurations (search.space.grid_points), each once, in file order
    nsga2   NSGAIISampler (objective pareto only)
    motpe   TPESampler on a two-objective study (objective pareto only)

Initial design (tpe in mode family, `sampler.initial_design: families`, the default): a new study first runs every
family once, in an order drawn from the sampler's seed, at the middle of the family's weights (geometric middle
of a log range, the middle of a list); then the sampler proposes. TPE's own start is random draws, which with
seven families leave some families untried for many trials; the replay benchmark (bench/bench_replay.py) measures
the difference. The design is enqueued (study.py), so it survives a restart like any enqueued trial.

Optuna does not persist a sampler's random state, so after a driver restart the proposals differ from an
uninterrupted run; the seed makes the first segment reproducible. The grid sampler keeps its state in the study
(a system attribute per trial), so it resumes exactly.
"""
from __future__ import annotations

import math
import random
import warnings
from collections import Counter
from typing import Any, Sequence

import optuna

from search.space import Choice, Range, grid_points, searched

GRID_ATTR = "humanlike:grid_point"  # trial system attribute: index of the grid point the trial runs


def _startup(s) -> dict[str, int]:
    return {} if s.n_startup_trials is None else {"n_startup_trials": s.n_startup_trials}


def _tpe(spec):
    return optuna.samplers.TPESampler(multivariate=True, constant_liar=True, group=spec.space.mode == "family",
                                      seed=spec.sampler.seed, **_startup(spec.sampler))


def _nsga2(spec):
    size = spec.sampler.population_size
    return optuna.samplers.NSGAIISampler(seed=spec.sampler.seed, **({} if size is None else {"population_size": size}))


# The registry of `sampler.name`s (the module docstring says what each is): name -> builder(spec). The one list of
# the names: search.spec validates against it.
SAMPLERS = {
    "tpe": _tpe,
    "gp": lambda spec: optuna.samplers.GPSampler(seed=spec.sampler.seed, **_startup(spec.sampler)),
    "random": lambda spec: optuna.samplers.RandomSampler(seed=spec.sampler.seed),
    "grid": lambda spec: GridPointsSampler(grid_points(spec.space), seed=spec.sampler.seed),
    "nsga2": _nsga2,
    "motpe": _tpe,  # the same TPE; the study has two objectives
}
MULTI_OBJECTIVE_ONLY = ("nsga2", "motpe")  # need objective: pareto
TAKES_STARTUP_TRIALS = ("tpe", "gp", "motpe")  # accept sampler.n_startup_trials


def make_sampler(spec):
    """A fresh optuna sampler for the sweep (build it again in every driver process)."""
    if spec.sampler.name not in SAMPLERS:  # sweep_from_dict has checked it already
        raise ValueError(f"sampler.name: unknown sampler {spec.sampler.name!r}")
    with warnings.catch_warnings():  # multivariate/group/constant_liar are marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return SAMPLERS[spec.sampler.name](spec)


def initial_design(spec) -> list[dict[str, Any]]:
    """The configurations a new study runs before its sampler proposes (see the module docstring); [] if none."""
    if spec.space.mode != "family" or spec.sampler.name != "tpe" or spec.sampler.initial_design == "none":
        return []
    points = []
    for family, dim in spec.space.families.items():
        point: dict[str, Any] = {"family": family}
        if searched(dim):
            point[f"w_{family}"] = _middle(dim)
        points.append(point)
    random.Random(spec.sampler.seed).shuffle(points)
    return points


def _middle(dim) -> Any:
    if isinstance(dim, Choice):
        values = sorted(dim.choices)
        return values[len(values) // 2]
    assert isinstance(dim, Range)
    mid = math.sqrt(dim.low * dim.high) if dim.log else (dim.low + dim.high) / 2
    return round(mid) if dim.integer else mid


def make_pruner(spec):
    """MedianPruner / PercentilePruner / NopPruner from spec.pruner. The driver reports the trial's intermediate
    values (e.g. after the RAE stage, step 0) and asks should_prune() before launching the next stage."""
    p = spec.pruner
    if p["name"] == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=p["n_startup_trials"], n_warmup_steps=p["n_warmup_steps"])
    if p["name"] == "percentile":
        return optuna.pruners.PercentilePruner(p["percentile"], n_startup_trials=p["n_startup_trials"],
                                               n_warmup_steps=p["n_warmup_steps"])
    return optuna.pruners.NopPruner()


class GridPointsSampler(optuna.samplers.BaseSampler):
    """Runs a fixed list of configurations, each once, lowest index first.

    Unlike optuna's GridSampler (a Cartesian product), the list may be a union of grids, e.g. (family, weight)
    pairs of a conditional space. Each new trial claims the first point that no trial of the study (in any
    state) holds; the claim is a trial system attribute, so a new driver process continues where the last one
    stopped. An enqueued trial keeps its own parameters and claims the point equal to them. When every point is
    taken (the driver asked for more trials than points), the least-used point runs again, with a warning.
    Not safe for several drivers asking at the same moment (two may claim the same point).
    """

    def __init__(self, points: Sequence[dict[str, Any]], *, seed: int | None = None) -> None:
        if not points:
            raise ValueError("GridPointsSampler needs at least one configuration")
        self._points = [dict(p) for p in points]
        self._fallback = optuna.samplers.RandomSampler(seed=seed)

    @property
    def points(self) -> list[dict[str, Any]]:
        return [dict(p) for p in self._points]

    def infer_relative_search_space(self, study, trial) -> dict:
        return {}

    def sample_relative(self, study, trial, search_space) -> dict:
        return {}

    def before_trial(self, study, trial) -> None:
        if GRID_ATTR in trial.system_attrs:
            return
        fixed = trial.system_attrs.get("fixed_params")
        if fixed is not None:  # enqueued: keep its parameters; record which point they are, if any
            matches = [i for i, p in enumerate(self._points) if p == dict(fixed)]
            if matches:
                study._storage.set_trial_system_attr(trial._trial_id, GRID_ATTR, matches[0])
            return
        used = Counter(t.system_attrs[GRID_ATTR] for t in study.get_trials(deepcopy=False)
                       if GRID_ATTR in t.system_attrs)
        free = [i for i in range(len(self._points)) if i not in used]
        if free:
            index = free[0]
        else:
            index = min(range(len(self._points)), key=lambda i: (used[i], i))
            warnings.warn(f"grid exhausted: all {len(self._points)} configurations were run; repeating point {index}",
                          stacklevel=2)
        # optuna's own GridSampler stores its choice the same way (storage, before any suggest call).
        study._storage.set_trial_system_attr(trial._trial_id, GRID_ATTR, index)

    def sample_independent(self, study, trial, param_name, param_distribution) -> Any:
        index = trial.system_attrs.get(GRID_ATTR)
        if index is None or param_name not in self._points[index]:
            return self._fallback.sample_independent(study, trial, param_name, param_distribution)
        return self._points[index][param_name]
