"""Replay benchmark: how many trials a sampler needs to find a human-like configuration, on a surrogate of real trials.

In the spirit of tabular HPO benchmarks: a real table of trials (the paper's protocol, every regularizer setting at
a fixed list of weights, trained and evaluated by humanlike's own sweeps) becomes a cheap objective, so that a
sampler can be run hundreds of times in minutes.

Surrogate (built by `Surrogate.from_table`):
    for each setting, originality and recognizability are interpolated linearly in log10(weight) between the
    weights the table holds (constant beyond the ends; the setting 'none' is one point); the distance to the human
    point is computed from the two interpolated axes (SPEC part 0), so it bends where the real distance bends.
    Noise: the seed-to-seed standard deviation of each axis, pooled over the configurations the table trained with
    several seeds; an observation adds one normal draw per axis.

Benchmark (`replay`): each sampler proposes (family, weight) in the conditional space the table spans (the
sweep's own sampler objects from search/samplers.py and search/space.py, on an in-memory study), is told the
noisy distance, and is scored by the noise-free distance of what it proposed: the number of trials until one
lands within `tolerance` (10%) of the table's best distance. 'grid' runs the table's own configurations in a
random order per seed (the paper's protocol, with no knowledge of which weights are good). GP, which sweeps only
allow on non-conditional spaces, searches the setting and one shared position within the setting's log-range.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from evaluation.distance import distance_to_human

SAMPLERS = ("grid", "random", "tpe", "tpe-random-start", "gp")


@dataclass(frozen=True)
class Curve:
    """One setting's measured axes at sorted log10 weights (a single point for 'none')."""
    log_w: np.ndarray  # (K,)
    originality: np.ndarray  # (K,) mean over seeds
    recognizability: np.ndarray  # (K,)

    def at(self, weight: float | None) -> tuple[float, float]:
        if len(self.log_w) == 1 or weight is None:
            return float(self.originality[0]), float(self.recognizability[0])
        x = math.log10(weight)
        return (float(np.interp(x, self.log_w, self.originality)),
                float(np.interp(x, self.log_w, self.recognizability)))


@dataclass(frozen=True)
class Surrogate:
    curves: dict[str, Curve]  # setting -> curve
    human: tuple[float, float]  # (originality, recognizability) of the human point the table was scored against
    noise: tuple[float, float]  # seed-to-seed std of (originality, recognizability)
    grid: tuple[tuple[str, float | None], ...]  # the table's configurations, in table order
    n_rows: int
    mean_wall_s: float = float("nan")  # mean wall_total_s of a trial (nan when the table has no times)

    @classmethod
    def from_table(cls, table) -> "Surrogate":
        """A pandas DataFrame of result rows (search/results.py columns) of one family-mode sweep, or several
        sweeps of the same configurations with other seeds."""
        from search.results import trained_rows

        df = trained_rows(table[table["state"] == "COMPLETE"]).copy()  # a reused row is not another observation
        if df.empty:
            raise ValueError("the replay table has no COMPLETE trials")
        if "param.family" not in df.columns:
            raise ValueError("the replay table must come from a family-mode sweep (a param.family column)")
        df["weight"] = [_weight_of(row) for row in df.to_dict("records")]
        human = (float(df["human_originality"].iloc[0]), float(df["human_recognizability"].iloc[0]))
        if not np.allclose(df["human_originality"], human[0]) or not np.allclose(df["human_recognizability"],
                                                                                  human[1]):
            raise ValueError("the replay table mixes rows scored against different human points")
        key = ["param.family", "weight"]
        groups = df.fillna({"weight": -1.0}).groupby(key, sort=False)
        means = groups[["originality", "recognizability"]].mean()
        curves = {}
        for family, part in means.groupby(level=0, sort=False):
            w = part.index.get_level_values(1).to_numpy(dtype=float)
            order = np.argsort(w)
            log_w = np.log10(np.where(w[order] > 0, w[order], 1.0))  # 'none' (-1): a single point
            curves[family] = Curve(log_w, part["originality"].to_numpy()[order],
                                   part["recognizability"].to_numpy()[order])
        noise = (_pooled_std(groups["originality"]), _pooled_std(groups["recognizability"]))
        grid = tuple((f, None if w < 0 else float(w)) for f, w in means.index)
        wall = float(df["wall_total_s"].mean()) if "wall_total_s" in df.columns else float("nan")
        return cls(curves=curves, human=human, noise=noise, grid=grid, n_rows=len(df), mean_wall_s=wall)

    def axes(self, family: str, weight: float | None) -> tuple[float, float]:
        if family not in self.curves:
            raise KeyError(f"setting {family!r} is not in the replay table ({', '.join(self.curves)})")
        return self.curves[family].at(weight)

    def distance(self, family: str, weight: float | None, *, noise: np.random.Generator | None = None) -> float:
        """Relative distance to the human point (SPEC part 0); with `noise`, one seed-to-seed draw per axis."""
        o, r = self.axes(family, weight)
        if noise is not None:
            o += noise.normal(0.0, self.noise[0])
            r += noise.normal(0.0, self.noise[1])
        return distance_to_human(o, r, *self.human)

    def best(self) -> float:
        """The best noise-free distance among the table's own configurations (the target of the benchmark)."""
        return min(self.distance(f, w) for f, w in self.grid)

    def ranked(self, *, noise: np.random.Generator | None = None) -> list[tuple[str, float | None]]:
        """The table's configurations nearest to the human point first: by the measured means, or with `noise` as
        one run of the table with other seeds would rank them (one seed-to-seed draw per configuration and axis)."""
        scored = [(self.distance(*c, noise=noise), i) for i, c in enumerate(self.grid)]
        return [self.grid[i] for _, i in sorted(scored)]

    def weights(self, family: str) -> list[float]:
        """The weights the table holds for a setting, ascending (empty for 'none')."""
        return sorted(w for f, w in self.grid if f == family and w is not None)

    def ranges(self) -> dict[str, tuple[float, float] | None]:
        """Each setting's weight range in the table (None for 'none')."""
        return {f: None if len(c.log_w) == 1 else (10 ** float(c.log_w[0]), 10 ** float(c.log_w[-1]))
                for f, c in self.curves.items()}


def _weight_of(row: Mapping[str, Any]) -> float:
    w = row.get(f"param.w_{row['param.family']}")
    return float("nan") if w is None or (isinstance(w, float) and math.isnan(w)) else float(w)


def _pooled_std(series_groups) -> float:
    """sqrt of the pooled within-group variance over groups with more than one value (0 if there are none)."""
    var = series_groups.var(ddof=1)
    n = series_groups.count()
    mask = n > 1
    if not mask.any():
        return 0.0
    return float(math.sqrt(((n[mask] - 1) * var[mask]).sum() / (n[mask] - 1).sum()))


# --- running samplers on the surrogate ----------------------------------------------------------------------------


def space_spec(surrogate: Surrogate, sampler: str, seed: int, n_trials: int, *, lists: bool = False):
    """The SweepSpec a user would write for this search (family mode over the table's settings and ranges, or with
    lists: over the weights the table holds, as the grid has them); 'tpe-random-start' is tpe without its initial
    design (sampler.initial_design: none)."""
    from search.spec import sweep_from_dict

    families: dict[str, Any] = {}
    for family, span in surrogate.ranges().items():
        if span is None:
            families[family] = {}
        elif lists:
            families[family] = {"choices": surrogate.weights(family)}
        else:
            families[family] = {"low": span[0], "high": span[1]}
    chosen = ({"name": "tpe", "seed": seed, "initial_design": "none"} if sampler == "tpe-random-start"
              else {"name": sampler, "seed": seed})
    raw = {"name": "replay", "train": {"preset": "quick", "data": {"dataset": "omniglot"}},
           "search": {"families": families}, "sampler": chosen, "n_trials": n_trials}
    return sweep_from_dict(raw, check_data=False)


def run_sampler(surrogate: Surrogate, sampler: str, *, seed: int, n_trials: int, lists: bool = False,
                first: Sequence[tuple[str, float | None]] = ()) -> np.ndarray:
    """The noise-free distance of each of the n_trials configurations the sampler proposes, in order. lists: the
    sampler chooses among the table's own configurations (as the grid does), and a configuration proposed again is
    reused as a sweep's driver reuses it (search/driver.py: the study is told the first observation again, nothing
    is trained): only the trainings are returned, so that trials to the target count trainings. first: (setting,
    weight) configurations run before the sampler proposes anything, as a sweep's warm_start enqueues them (the
    grid runs them first, then the rest of its configurations in its random order)."""
    rng = np.random.default_rng(seed)
    first = [tuple(c) for c in first]
    if sampler == "grid":
        order = rng.permutation(len(surrogate.grid))
        rest = [surrogate.grid[i] for i in order if surrogate.grid[i] not in first]
        proposals = (first + rest)[:n_trials]
        return np.array([surrogate.distance(f, w) for f, w in proposals])
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose from {', '.join(SAMPLERS)}")
    import optuna

    from search.samplers import make_sampler
    from search.space import suggest
    from search.study import enqueue_initial_design

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental-feature warnings of TPE/GP options
        if sampler == "gp":  # sweeps refuse GP on the conditional space: it gets a flat encoding (_flat_suggest)
            study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=seed), direction="minimize")
            for family, weight in first:
                study.enqueue_trial({"family": family, "u": _position(surrogate, family, weight)})
            propose = lambda trial: _flat_suggest(trial, surrogate, lists=lists)  # noqa: E731
        else:
            spec = space_spec(surrogate, sampler, seed, n_trials, lists=lists)
            study = optuna.create_study(sampler=make_sampler(spec), direction="minimize")
            for family, weight in first:  # a warm start: the driver enqueues it instead of the initial design
                study.enqueue_trial({"family": family} if weight is None else
                                    {"family": family, f"w_{family}": weight})
            enqueue_initial_design(study, spec)  # what a sweep's driver does to a new study
            propose = lambda trial: _family_weight(suggest(trial, spec.space))  # noqa: E731
        true, seen = [], {}
        for _ in range(n_trials):
            trial = study.ask()
            config = propose(trial)
            if lists and config in seen:  # reused: the same observation again, no training
                study.tell(trial, seen[config])
                continue
            seen[config] = surrogate.distance(*config, noise=rng)
            study.tell(trial, seen[config])
            true.append(surrogate.distance(*config))
    return np.array(true)


def _family_weight(params: Mapping[str, Any]) -> tuple[str, float | None]:
    return params["family"], params.get(f"w_{params['family']}")


def _flat_suggest(trial, surrogate: Surrogate, *, lists: bool = False) -> tuple[str, float | None]:
    """GP's encoding: the setting (categorical) and one position u in [0, 1] shared by all settings, mapped to
    log10(weight) within the chosen setting's range, so that every trial has the same two dimensions (lists: the
    table's weight of that setting nearest in log10)."""
    ranges = surrogate.ranges()
    family = trial.suggest_categorical("family", list(ranges))
    u = trial.suggest_float("u", 0.0, 1.0)
    span = ranges[family]
    if span is None:
        return family, None
    lo, hi = math.log10(span[0]), math.log10(span[1])
    x = lo + u * (hi - lo)
    if lists:
        return family, min(surrogate.weights(family), key=lambda w: abs(math.log10(w) - x))
    return family, 10 ** x


def _position(surrogate: Surrogate, family: str, weight: float | None) -> float:
    """_flat_suggest's u of a weight: its position in log10 within the setting's range (0 for 'none')."""
    span = surrogate.ranges()[family]
    if span is None or weight is None:
        return 0.0
    lo, hi = math.log10(span[0]), math.log10(span[1])
    return min(max((math.log10(weight) - lo) / (hi - lo), 0.0), 1.0)


def trials_to_target(true: np.ndarray, target: float) -> int | None:
    """1-based index of the first proposal within the target, None if none is."""
    hits = np.flatnonzero(true <= target)
    return int(hits[0]) + 1 if hits.size else None


def replay(surrogate: Surrogate, samplers: Sequence[str] = SAMPLERS, *, seeds: int = 20, n_trials: int | None = None,
           tolerance: float = 0.10, lists: bool = False, screen: Surrogate | None = None, screen_best: int = 3,
           progress=None) -> dict[str, Any]:
    """{'target', 'best', 'grid_size', 'samplers': {name: {'trials': [...], 'median', 'q25', 'q75', 'misses',
    'trainings', 'curves': (seeds, n_trials) best-so-far noise-free distance}}}. lists: run_sampler's; 'trials'
    then counts trainings (a reused proposal is free) and 'trainings' is the median a run of n_trials trained.
    screen: a cheaper table of the same configurations (another preset's); at each seed its screen_best nearest
    configurations, as one run of it would rank them (its own seed noise drawn), are run first (run_sampler's
    `first`, a sweep's warm_start: {parquet, best}); its 'screens' lists them per seed."""
    shared = [] if screen is None else [c for c in screen.grid if c in surrogate.grid]
    if screen is not None and not shared:
        raise ValueError("screen: it holds none of the replay table's configurations")
    n_trials = n_trials or len(surrogate.grid)
    best = surrogate.best()
    target = best * (1.0 + tolerance)
    out: dict[str, Any] = {"best": best, "target": target, "grid_size": len(surrogate.grid), "n_trials": n_trials,
                           "seeds": seeds, "tolerance": tolerance, "noise": surrogate.noise, "lists": lists,
                           "samplers": {}}
    firsts = []
    for seed in range(seeds):
        if screen is None:
            firsts.append([])
            continue
        ranked = screen.ranked(noise=np.random.default_rng([seed, 1]))
        firsts.append([c for c in ranked if c in shared][:screen_best])
    out["screens"] = firsts
    for name in samplers:
        counts, curves, trained = [], [], []
        for seed in range(seeds):
            true = run_sampler(surrogate, name, seed=seed, n_trials=n_trials, lists=lists, first=firsts[seed])
            trained.append(len(true))
            counts.append(trials_to_target(true, target))
            curves.append(np.minimum.accumulate(_pad(true, n_trials)))
            if progress:
                progress(name, seed)
        found = np.array([c if c is not None else n_trials + 1 for c in counts], dtype=float)  # a miss: > budget
        out["samplers"][name] = {
            "trials": counts, "median": float(np.median(found)), "q25": float(np.percentile(found, 25)),
            "q75": float(np.percentile(found, 75)), "misses": sum(c is None for c in counts),
            "trainings": float(np.median(trained)),
            "curves": np.stack(curves),
        }
    return out


def _pad(values: np.ndarray, n: int) -> np.ndarray:
    """A grid shorter than the budget stops: its best-so-far stays where it ended."""
    if len(values) >= n:
        return values[:n]
    return np.concatenate([values, np.full(n - len(values), np.inf)])


def plot(result: Mapping[str, Any], path) -> None:
    """Convergence curves: median best-so-far distance to human against trials, interquartile band per sampler."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=150)
    x = np.arange(1, result["n_trials"] + 1)
    for name, r in result["samplers"].items():
        curves = r["curves"]
        med = np.median(curves, axis=0)
        ax.plot(x, med, label=f"{name} (median {r['median']:.0f} trials)")
        ax.fill_between(x, np.percentile(curves, 25, axis=0), np.percentile(curves, 75, axis=0), alpha=0.2)
    ax.axhline(result["target"], color="k", ls="--", lw=0.8, label=f"best + {result['tolerance']:.0%}")
    ax.set_xlabel("trials")
    ax.set_ylabel("best distance to human so far")
    ax.set_title(f"replay over {result['seeds']} seeds")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
