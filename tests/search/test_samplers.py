"""Every sampler builds from a sweep and proposes parameters inside the space; grid runs exactly the listed
configurations, once each, across driver restarts (a real journal file)."""
from __future__ import annotations

import math
import warnings

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from search.samplers import GRID_ATTR, GridPointsSampler, make_pruner, make_sampler
from search.space import check_params, grid_points, suggest
from search.spec import sweep_from_dict

optuna.logging.set_verbosity(optuna.logging.WARNING)

WEIGHTS = {"regularizers": {"prototype": {"low": 0.1, "high": 100}, "barlow": {"low": 1.0, "high": 100}}}
FAMILIES = {"families": {"none": {}, "kl": {"low": 1.0e-3, "high": 1.0}, "prototype": {"low": 0.1, "high": 100}}}
GRID = {"families": {"none": {}, "kl": {"choices": [0.001, 0.1]}, "barlow": {"choices": [1.0, 10.0, 100.0]}},
        "params": {"guidance": {"choices": [0.5, 2.0]}}}


def make_spec(data_dir, search, sampler, objective="distance", n_trials=12):
    return sweep_from_dict({"name": "s", "train": {"preset": "quick", "data": {"data_dir": str(data_dir)}},
                            "search": search, "sampler": sampler, "objective": objective, "n_trials": n_trials},
                           check_data=False)


def toy_values(params, n_objectives):
    """A smooth function of the parameters, so model-based samplers have something to fit."""
    w = sum(math.log10(v) for k, v in params.items() if k.startswith("w_"))
    return [abs(w - 0.5) + 0.1 * i for i in range(n_objectives)]


@pytest.mark.parametrize("sampler, search, objective", [
    ({"name": "tpe", "n_startup_trials": 3}, WEIGHTS, "distance"),
    ({"name": "tpe", "n_startup_trials": 3}, FAMILIES, "distance"),
    ({"name": "gp", "n_startup_trials": 3}, WEIGHTS, "distance"),
    ("random", FAMILIES, "distance"),
    ({"name": "nsga2", "population_size": 4}, WEIGHTS, "pareto"),
    ({"name": "motpe", "n_startup_trials": 3}, FAMILIES, "pareto"),
])
def test_sampler_proposes_valid_parameters(data_dir, sampler, search, objective):
    spec = make_spec(data_dir, search, sampler, objective)
    study = optuna.create_study(directions=spec.directions, sampler=make_sampler(spec), pruner=make_pruner(spec))
    families = set()
    for _ in range(10):
        trial = study.ask()
        params = suggest(trial, spec.space)
        check_params(spec.space, params)  # raises if anything lies outside the space
        assert set(params) >= ({"family"} if spec.space.mode == "family" else {"w_prototype", "w_barlow"})
        families.add(params.get("family"))
        study.tell(trial, toy_values(params, len(spec.directions)))
    assert len(study.trials) == 10 and all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    if spec.space.mode == "family":
        assert len(families) >= 2  # the family itself is searched


def test_tpe_settings(data_dir):
    tpe = make_sampler(make_spec(data_dir, FAMILIES, "tpe"))
    assert isinstance(tpe, optuna.samplers.TPESampler)
    # multivariate + constant liar for parallel trials, group for the conditional family space (optuna's own
    # attribute names; there is no public getter)
    assert tpe._multivariate and tpe._constant_liar and tpe._group
    assert not make_sampler(make_spec(data_dir, WEIGHTS, "tpe"))._group
    assert isinstance(make_sampler(make_spec(data_dir, WEIGHTS, "nsga2", "pareto")), optuna.samplers.NSGAIISampler)
    assert isinstance(make_sampler(make_spec(data_dir, WEIGHTS, "gp")), optuna.samplers.GPSampler)


def test_pruners(data_dir):
    spec = make_spec(data_dir, WEIGHTS, "tpe")
    assert isinstance(make_pruner(spec), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner(make_spec(data_dir, WEIGHTS, "motpe", "pareto")), optuna.pruners.NopPruner)


def _run(study, spec, n):
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(suggest(trial, spec.space))
        study.tell(trial, 1.0)
    return out


def _claimed(study) -> set[int]:
    """The grid points the study's trials have claimed."""
    return {t.system_attrs[GRID_ATTR] for t in study.get_trials(deepcopy=False) if GRID_ATTR in t.system_attrs}


def test_grid_runs_exactly_the_listed_configurations_across_restarts(data_dir, tmp_path):
    spec = make_spec(data_dir, GRID, "grid", n_trials=None)
    expected = grid_points(spec.space)
    # an independent count: (none + 2 kl weights + 3 barlow weights) x 2 guidance values
    assert spec.n_trials == len(expected) == (1 + 2 + 3) * 2
    path = str(tmp_path / "study.journal")
    first = optuna.create_study(study_name="g", storage=JournalStorage(JournalFileBackend(path)),
                                sampler=make_sampler(spec))
    seen = _run(first, spec, 5)
    running = first.ask()  # a trial the dead driver never finished: it keeps its point
    seen.append(suggest(running, spec.space))
    # a new driver process: new storage object, new sampler
    second = optuna.load_study(study_name="g", storage=JournalStorage(JournalFileBackend(path)),
                               sampler=make_sampler(spec))
    assert len(_claimed(second)) == 6
    seen += _run(second, spec, len(expected) - 6)
    assert seen == expected  # every configuration once, in file order
    assert _claimed(second) == set(range(len(expected)))
    with pytest.warns(UserWarning, match="grid exhausted"):
        second.ask()


def test_grid_enqueued_trial_keeps_its_parameters(data_dir):
    spec = make_spec(data_dir, GRID, "grid", n_trials=None)
    study = optuna.create_study(sampler=make_sampler(spec))
    point = {"family": "barlow", "w_barlow": 10.0, "guidance": 2.0}
    study.enqueue_trial(point)
    trial = study.ask()
    assert suggest(trial, spec.space) == point
    assert study.trials[0].system_attrs[GRID_ATTR] == grid_points(spec.space).index(point)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rest = _run(study, spec, spec.n_trials - 1)
    assert point not in rest and len(rest) == spec.n_trials - 1


def test_grid_sampler_needs_points():
    with pytest.raises(ValueError, match="at least one"):
        GridPointsSampler([])


def test_initial_design_runs_every_family_once_at_its_middle_weight(data_dir):
    from search.samplers import initial_design
    from search.study import enqueue_initial_design

    search = {"families": {"none": {}, "kl": {"low": 1.0e-3, "high": 1.0}, "prototype": {"choices": [0.1, 10.0, 1.0]},
                           "barlow": 10.0}}
    spec = make_spec(data_dir, search, {"name": "tpe", "seed": 3})
    design = initial_design(spec)
    assert sorted(p["family"] for p in design) == ["barlow", "kl", "none", "prototype"]
    by_family = {p["family"]: p for p in design}
    assert by_family["kl"]["w_kl"] == pytest.approx(10 ** -1.5)  # geometric middle of a log range
    assert by_family["prototype"]["w_prototype"] == 1.0  # the middle of the sorted list
    assert by_family["none"] == {"family": "none"} and by_family["barlow"] == {"family": "barlow"}  # fixed: no param
    orders = {tuple(p["family"] for p in initial_design(make_spec(data_dir, search, {"name": "tpe", "seed": s})))
              for s in range(6)}
    assert len(orders) > 1  # the order comes from the seed
    assert initial_design(make_spec(data_dir, search, {"name": "tpe", "initial_design": "none"})) == []
    assert initial_design(make_spec(data_dir, search, "random")) == []  # the baseline stays random
    assert initial_design(make_spec(data_dir, WEIGHTS, "tpe")) == []  # mode weights: no families

    # A new study runs the design first, in order, then the sampler; a study with trials gets nothing again.
    study = optuna.create_study(sampler=make_sampler(spec))
    assert enqueue_initial_design(study, spec) == 4
    for expected in design:
        trial = study.ask()
        params = suggest(trial, spec.space)
        assert params == expected
        study.tell(trial, toy_values(params, 1)[0] if len(params) > 1 else 1.0)
    assert enqueue_initial_design(study, spec) == 0
    assert len(study.trials) == 4


def test_initial_design_setting_is_checked(data_dir):
    from search.errors import SweepError

    with pytest.raises(SweepError, match="sampler.initial_design"):
        make_spec(data_dir, FAMILIES, {"name": "tpe", "initial_design": "sobol"})
