"""The replay surrogate and benchmark on a small table written here (values chosen so each check has a golden answer
computed independently), and on the committed real table when it exists."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from search.replay import Surrogate, replay, run_sampler, trials_to_target

HUMAN = (0.5, 0.8)
REAL_TABLE = Path(__file__).resolve().parents[2] / "bench" / "replay_table.parquet"


def _row(family, weight, o, r, seed=0):
    row = {"state": "COMPLETE", "param.family": family, "originality": o, "recognizability": r, "seed": seed,
           "human_originality": HUMAN[0], "human_recognizability": HUMAN[1]}
    if weight is not None:
        row[f"param.w_{family}"] = weight
    return row


@pytest.fixture()
def table():
    rows = [_row("none", None, 0.2, 0.9),
            _row("prototype", 0.1, 0.3, 0.95), _row("prototype", 10.0, 0.7, 0.6),
            _row("barlow", 1.0, 0.4, 0.85), _row("barlow", 100.0, 0.9, 0.3),
            # seed replicates: originality 0.4 +- 0.02 and 0.3 +- 0.04 -> pooled var (0.02^2*2 + 0.04^2*2) / 2
            _row("barlow", 1.0, 0.42, 0.85, seed=1), _row("barlow", 1.0, 0.38, 0.85, seed=2),
            _row("prototype", 0.1, 0.34, 0.95, seed=1), _row("prototype", 0.1, 0.26, 0.95, seed=2),
            {"state": "FAIL", "param.family": "kl", "param.w_kl": 1.0, "originality": None, "recognizability": None,
             "human_originality": HUMAN[0], "human_recognizability": HUMAN[1]}]
    return pd.DataFrame(rows)


def test_surrogate_interpolates_in_log_weight_and_pools_seed_noise(table):
    s = Surrogate.from_table(table)
    assert set(s.curves) == {"none", "prototype", "barlow"}  # the FAIL row is not data
    assert s.axes("prototype", 1.0) == pytest.approx((0.5, 0.775))  # log-midpoint of 0.1 and 10
    assert s.axes("prototype", 1000.0) == pytest.approx((0.7, 0.6))  # constant beyond the ends
    assert s.axes("none", None) == (0.2, 0.9)
    assert s.noise[0] == pytest.approx(math.sqrt((2 * 0.02 ** 2 + 2 * 0.04 ** 2) / 4))
    assert s.noise[1] == pytest.approx(0.0)
    o, r = 0.5, 0.775
    assert s.distance("prototype", 1.0) == pytest.approx(math.hypot((o - 0.5) / 0.5, (r - 0.8) / 0.8))
    assert s.ranges() == {"none": None, "prototype": (0.1, 10.0), "barlow": (1.0, 100.0)}
    assert len(s.grid) == 5 and s.best() == pytest.approx(min(s.distance(f, w) for f, w in s.grid))
    with pytest.raises(KeyError, match="'kl' is not in the replay table"):
        s.distance("kl", 1.0)


def test_table_errors(table):
    with pytest.raises(ValueError, match="no COMPLETE"):
        Surrogate.from_table(table[table["state"] == "FAIL"])
    with pytest.raises(ValueError, match="family-mode"):
        Surrogate.from_table(table.drop(columns=["param.family"]))
    mixed = table.copy()
    mixed.loc[0, "human_originality"] = 0.6
    with pytest.raises(ValueError, match="different human points"):
        Surrogate.from_table(mixed)


def test_trials_to_target():
    assert trials_to_target(np.array([3.0, 2.0, 1.0]), 2.0) == 2
    assert trials_to_target(np.array([3.0]), 2.0) is None


def test_grid_always_reaches_its_own_best_and_samplers_run(table):
    s = Surrogate.from_table(table)
    for seed in range(5):
        true = run_sampler(s, "grid", seed=seed, n_trials=len(s.grid))
        assert sorted(true) == sorted(s.distance(f, w) for f, w in s.grid)  # every configuration once
    result = replay(s, ("grid", "random", "tpe", "tpe-random-start", "gp"), seeds=3, n_trials=8)
    assert result["samplers"]["grid"]["misses"] == 0
    for name, r in result["samplers"].items():
        assert r["curves"].shape == (3, 8)
        assert np.all(np.diff(r["curves"], axis=1) <= 0)  # best so far never gets worse
    a = run_sampler(s, "tpe", seed=1, n_trials=6)
    assert np.array_equal(a, run_sampler(s, "tpe", seed=1, n_trials=6))  # seeded: the benchmark is repeatable


@pytest.mark.skipif(not REAL_TABLE.is_file(), reason="bench/replay_table.parquet not built yet")
def test_committed_table_builds_a_surrogate():
    table = pd.read_parquet(REAL_TABLE)
    s = Surrogate.from_table(table)
    params = [c for c in table.columns if c.startswith("param.")]
    repeated = table.fillna({c: -1 for c in params}).duplicated(["setting", *params]).any()
    assert len(s.curves) == 7
    # seed noise comes from configurations trained more than once (the seed-repeat sweeps), and only from them
    assert (s.noise[0] > 0 and s.noise[1] > 0) if repeated else s.noise == (0.0, 0.0)
    assert all(len(c.log_w) >= 3 for f, c in s.curves.items() if f != "none")  # a curve per regularizer


def test_default_tpe_tries_every_setting_first_and_the_random_start_does_not(table):
    """The sweep's tpe runs its initial design (every setting once) first; tpe-random-start is TPE's own start."""
    s = Surrogate.from_table(table)
    k = len(s.curves)
    first = run_sampler(s, "tpe", seed=0, n_trials=k)
    middles = sorted(s.distance(f, None if s.ranges()[f] is None else
                                10 ** (sum(map(np.log10, s.ranges()[f])) / 2)) for f in s.curves)
    assert np.allclose(sorted(first), middles)
    plain = [run_sampler(s, "tpe-random-start", seed=seed, n_trials=k) for seed in range(3)]
    assert any(not np.allclose(sorted(p), middles) for p in plain)


def test_lists_mode_proposes_the_tables_configurations_and_trains_each_once(table):
    """lists: the samplers choose among the table's own weights, as the grid does, and a configuration proposed
    again is reused as the driver reuses it: a run trains each configuration at most once, so a budget of more
    proposals than the table has configurations trains at most all of them."""
    s = Surrogate.from_table(table)
    assert s.weights("prototype") == [0.1, 10.0] and s.weights("none") == []
    on_grid = sorted(s.distance(f, w) for f, w in s.grid)
    for name in ("random", "tpe", "gp"):
        true = run_sampler(s, name, seed=0, n_trials=30, lists=True)
        assert 1 <= len(true) <= len(s.grid) and len(set(true)) == len(true), name  # no configuration twice
        assert all(any(math.isclose(t, g) for g in on_grid) for t in true), name  # only the table's own
    result = replay(s, ("random",), seeds=2, n_trials=30, lists=True)
    assert result["lists"] and result["samplers"]["random"]["trainings"] <= len(s.grid)


def test_screened_configurations_run_first_for_every_sampler(table):
    """first (a screen's nearest configurations, as warm_start: {parquet, best} enqueues them): every sampler's first
    trainings are exactly those, in that order, before it proposes anything; the grid then runs the rest once."""
    s = Surrogate.from_table(table)
    first = [("barlow", 100.0), ("none", None)]
    expected = [s.distance(*c) for c in first]
    for name in ("grid", "random", "tpe", "tpe-random-start", "gp"):
        for lists in (False, True):
            true = run_sampler(s, name, seed=1, n_trials=5, lists=lists, first=first)
            assert np.allclose(true[:2], expected), (name, lists)
    grid = run_sampler(s, "grid", seed=1, n_trials=10, first=first)
    assert len(grid) == len(s.grid) and np.allclose(sorted(grid), sorted(s.distance(*c) for c in s.grid))
    ranked = s.ranked()
    assert [s.distance(*c) for c in ranked] == sorted(s.distance(*c) for c in s.grid)


def test_a_screen_runs_its_nearest_first_ranked_with_its_own_noise(table):
    """replay(screen=...): the screen's nearest configurations (as one noisy run of it ranks them) run first; a
    screen without noise that ranks the table's best first has every sampler find it at trial 1."""
    s = Surrogate.from_table(table)
    exact = Surrogate.from_table(table[table["seed"] == 0])  # one seed: no seed noise
    assert exact.noise == (0.0, 0.0) and s.noise[0] > 0
    assert exact.ranked()[0] == s.ranked()[0]  # seed 0 alone already ranks the table's best first
    result = replay(s, ("grid", "tpe"), seeds=3, n_trials=5, screen=exact, screen_best=1)
    assert result["screens"] == [[exact.ranked()[0]]] * 3
    assert all(r["trials"] == [1, 1, 1] for r in result["samplers"].values())
    noisy = replay(s, ("grid",), seeds=8, n_trials=5, screen=s, screen_best=2)["screens"]
    assert all(len(f) == 2 and set(f) <= set(s.grid) for f in noisy)
    assert len({tuple(f) for f in noisy}) > 1  # the noise reorders the screen from seed to seed
    with pytest.raises(ValueError, match="none of the replay table"):
        replay(s, ("grid",), seeds=1, screen=Surrogate.from_table(pd.DataFrame([_row("vq", 1.0, 0.5, 0.8)])))
