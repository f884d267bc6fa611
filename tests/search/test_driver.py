"""The driver on a real local Ray, a real Optuna journal and real Parquet rows; study/rows reconciliation.

The default run has one Ray sweep (two trials at once); the pruning and fail-fast sweeps are marked slow.
"""
from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from optuna.trial import TrialState

from search.driver import run_sweep
from search.study import read_sweep_file
from search.results import read_results, write_trial_row
from search.study import check_agreement, driver_trials_at_once, load_study, open_study, settle_stale

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def local_ray():
    import ray

    # A logical GPU, so that the sweep's fractional GPU request is really scheduled (notes 2e).
    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def small_sweep(local_ray, tmp_path_factory, data_dir, critics_dir, sweep_file):
    """Two trials at once on local Ray: the grid's first weight trains and evaluates, the second (1e38) makes
    the RAE loss infinite at its first step (TrainingDiverged) and must become a FAIL without stopping the sweep.
    Objective pareto: the study has two objectives (the pruning test below covers the single one)."""
    tmp = tmp_path_factory.mktemp("driver")
    path = sweep_file(tmp, data_dir, critics_dir, name="small", objective="pareto",
                      search={"regularizers": {"prototype": {"choices": [1.0, 1.0e38]}}},
                      sampler={"name": "grid"}, n_trials=2, max_concurrent=2, resources={"cpu": 1, "gpu": 0.5})
    spec, raw = read_sweep_file(path)
    lines: list[str] = []
    outcome = run_sweep(spec, raw, echo=lines.append)
    return spec, path, outcome, lines


def test_small_sweep_on_local_ray_ends_with_one_row_per_study_trial(small_sweep):
    spec, _, outcome, lines = small_sweep
    assert not outcome.interrupted and outcome.problems == [] and outcome.ran == 2
    study = load_study(spec)
    states = {t.number: t.state for t in study.trials}
    df = read_results(spec.dir()).set_index("trial")
    assert sorted(df.index) == sorted(states) == [0, 1]
    assert {n: TrialState[df.loc[n, "state"]] for n in df.index} == states
    by_weight = {df.loc[n, "param.w_prototype"]: n for n in df.index}
    ok, bad = by_weight[1.0], by_weight[1.0e38]
    assert states[ok] == TrialState.COMPLETE and states[bad] == TrialState.FAIL
    # The two objectives: each coordinate's deviation from the human point relative to it (SPEC part 0).
    row = df.loc[ok]
    expected = [abs(row["originality"] - row["human_originality"]) / row["human_originality"],
                abs(row["recognizability"] - row["human_recognizability"]) / row["human_recognizability"]]
    assert study.trials[ok].values == pytest.approx(expected, rel=1e-9)
    assert [row["value_0"], row["value_1"]] == pytest.approx(expected, rel=1e-9)
    assert row["distance"] == pytest.approx(math.hypot(*expected), rel=1e-9)
    assert df.loc[bad, "error"].startswith("TrainingDiverged: rae loss became inf")
    assert any(f"trial {bad}: FAIL" in line for line in lines)
    # Both trials ran at the same time (2 slots of 1 CPU and half a logical GPU each).
    assert df.loc[bad, "started_at"] < df.loc[ok, "finished_at"]
    assert pd.read_parquet(spec.dir() / "results").shape[0] == 2  # the store reads as one table
    assert not any("room for" in line for line in lines)  # 2 CPUs and 1 GPU hold both trials
    assert driver_trials_at_once(spec.dir()) == 2  # recorded in its lock for `sweep status` in another process


def test_the_trials_the_cluster_holds_at_once_bound_the_eta_and_a_shortfall_is_said(local_ray, tmp_path, data_dir,
                                                                                     critics_dir, sweep_file):
    """The local Ray above has 2 CPUs and 1 GPU: room for max_concurrent is counted from both, and a sweep that
    asks for more trials at once than fit is told why the others wait (instead of seeing them 'starting' for the
    length of a trial, with an ETA for twice the concurrency there is)."""
    from search.driver import _trials_at_once

    cases = [({"cpu": 1, "gpu": 0.5}, 2, 2, False), ({"cpu": 1, "gpu": 0}, 4, 2, True),
             ({"cpu": 2, "gpu": 0}, 2, 1, True), ({"cpu": 1, "gpu": 1}, 2, 1, True), ({"cpu": 0.5, "gpu": 0}, 3, 3, False)]
    for i, (resources, max_concurrent, room, said) in enumerate(cases):
        spec, _ = read_sweep_file(sweep_file(tmp_path / str(i), data_dir, critics_dir, name=f"room{i}",
                                             max_concurrent=max_concurrent, resources=resources))
        lines: list[str] = []
        assert _trials_at_once(spec, lines.append) == room, resources
        assert bool(lines) == said, (resources, lines)
        if said:
            assert f"room for {room} trial(s) at once, fewer than max_concurrent {max_concurrent}" in lines[0]
            assert "2 CPU" in lines[0] and ("1 GPU" in lines[0]) == (resources["gpu"] > 0)


def test_a_finished_sweep_run_again_does_nothing(small_sweep):
    spec, path, _, _ = small_sweep
    before = _hashes(spec.dir() / "results")
    spec2, raw = read_sweep_file(path)
    outcome = run_sweep(spec2, raw, echo=lambda line: None)
    assert outcome.ran == 0 and outcome.counts["COMPLETE"] == 1 and outcome.counts["FAIL"] == 1
    assert _hashes(spec.dir() / "results") == before


def _hashes(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


BAD = {
    "malformed.yaml": ("name: x\nsearch: [unclosed\n", "not valid YAML"),
    "unknown_regularizer": ({"search": {"regularizers": {"protoype": {"choices": [0.1, 1.0]}}}},
                            "search.regularizers.protoype: unknown regularizer"),
    "inverted_range": ({"search": {"regularizers": {"prototype": {"low": 10.0, "high": 1.0}}}, "sampler": "tpe"},
                       "search.regularizers.prototype: empty or inverted range"),
    "empty_range": ({"search": {"regularizers": {"prototype": {"low": 1.0, "high": 1.0}}}, "sampler": "tpe"},
                    "search.regularizers.prototype: empty or inverted range"),
    "no_dataset": ({"train": {"data": {"data_dir": "/nonexistent/humanlike-data"}}}, "train.data.data_dir"),
    "changed_shape": ({"search": {"regularizers": {"prototype": {"choices": [1.0, 2.0]}}}}, "search: the sweep"),
    "changed_objective": ({"objective": "distance"}, "objective: the sweep"),
}


def test_bad_sweep_files_exit_2_before_ray_and_leave_the_sweep_untouched(small_sweep, tmp_path, data_dir,
                                                                         critics_dir, sweep_file, sweep_cli):
    spec, _, _, _ = small_sweep
    before = _hashes(spec.dir())
    for label, (change, message) in BAD.items():
        if isinstance(change, str):
            path = tmp_path / label
            path.write_text(change)
        else:  # the small sweep's own file (same name and root) with one mistake
            top = {"search": {"regularizers": {"prototype": {"choices": [1.0, 1.0e38]}}}, "sampler": {"name": "grid"},
                   "resources": {"cpu": 1, "gpu": 0.5}, "objective": "pareto", "root": spec.root, **change}
            path = sweep_file(tmp_path / label, data_dir, critics_dir, name="small", **top)
        done = sweep_cli("run", str(path), cwd=tmp_path)
        assert done.returncode == 2, (label, done.stdout, done.stderr)
        assert message in done.stderr, (label, done.stderr)
        assert "Started a local Ray instance" not in done.stderr + done.stdout, label
    assert _hashes(spec.dir()) == before


@pytest.mark.slow  # a second Ray sweep: about 45 s on a busy 2-core machine
def test_a_trial_stopped_by_the_pruner_is_pruned_with_its_last_value(local_ray, tmp_path, data_dir, critics_dir,
                                                                       sweep_file):
    # One at a time: trial 0 (learning rate 1e-2) completes; trial 1 (1e-12) leaves its RAE at initialization, so
    # its held-out reconstruction error after the RAE stage (step 0) is far above trial 0's (about 559 vs 154
    # here) and the median pruner stops it before the LDM stage.
    path = sweep_file(tmp_path, data_dir, critics_dir, name="pruned",
                      search={"regularizers": {"prototype": 1.0}, "params": {"rae.lr": {"choices": [0.01, 1.0e-12]}}},
                      sampler={"name": "grid"}, n_trials=2, max_concurrent=1,
                      pruner={"name": "median", "n_startup_trials": 1})
    spec, raw = read_sweep_file(path)
    outcome = run_sweep(spec, raw, echo=lambda line: None)
    assert outcome.problems == [] and outcome.counts["COMPLETE"] == 1 and outcome.counts["PRUNED"] == 1
    study = load_study(spec)
    df = read_results(spec.dir()).set_index("trial")
    first, second = study.trials
    assert first.state == TrialState.COMPLETE and second.state == TrialState.PRUNED
    assert second.intermediate_values[0] > first.intermediate_values[0]
    # Optuna keeps a pruned trial's last intermediate value as its value; its state says it is not an objective.
    assert second.value == second.intermediate_values[0] and len(second.intermediate_values) == 1
    row = df.loc[second.number]
    assert row["state"] == "PRUNED" and row["last_step"] == 0
    assert row["last_value"] == pytest.approx(second.intermediate_values[0])
    assert pd.isna(row["originality"]) and pd.isna(row["value_0"])
    assert "median pruner at step 0" in row["error"]
    run = Path(row["run_dir"])
    assert (run / "rae.pt").is_file() and not (run / "ldm.pt").exists()  # stopped before the LDM stage


def test_stale_running_trials_are_settled_from_their_rows_or_run_again(tmp_path, data_dir, critics_dir, sweep_file):
    """What a driver killed at any moment leaves behind, built with the real study and store (no Ray)."""
    from search.space import suggest

    spec, _ = read_sweep_file(sweep_file(tmp_path, data_dir, critics_dir, n_trials=4))
    study = open_study(spec)
    trials = [study.ask() for _ in range(4)]
    params = [suggest(t, spec.space) for t in trials]
    base = {"sweep": spec.name, "objective": "distance"}
    write_trial_row(spec.dir(), {**base, "trial": 0, "state": "COMPLETE", "params": params[0], "value_0": 0.25,
                                 "distance": 0.25}, space=spec.space)
    write_trial_row(spec.dir(), {**base, "trial": 1, "state": "PRUNED", "params": params[1], "last_step": 0,
                                 "last_value": 550.0}, space=spec.space)
    write_trial_row(spec.dir(), {**base, "trial": 2, "state": "COMPLETE", "params": params[2]}, space=spec.space)
    # trial 3: no row (it was mid-training)

    relaunch, told = settle_stale(open_study(spec), spec)  # a new driver process
    assert [t.number for t in relaunch] == [3] and relaunch[0].params == params[3]
    assert told == {"COMPLETE": 1, "PRUNED": 1, "FAIL": 1}
    study = load_study(spec)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL,
                                                TrialState.RUNNING]
    assert study.trials[0].value == 0.25 and study.trials[1].intermediate_values == {0: 550.0}

    assert check_agreement(study, spec.dir()) == ["trial 3: still RUNNING in the study"]
    study.tell(3, state=TrialState.FAIL)
    assert check_agreement(study, spec.dir()) == ["trial 3: FAIL in the study but has no result row"]
    write_trial_row(spec.dir(), {**base, "trial": 3, "state": "PRUNED", "params": params[3]}, space=spec.space)
    write_trial_row(spec.dir(), {**base, "trial": 9, "state": "FAIL", "params": params[3]}, space=spec.space)
    assert check_agreement(study, spec.dir()) == ["trial 3: FAIL in the study, PRUNED in its row",
                                                  "trial 9: has a result row but is not in the study"]


def test_a_restarted_driver_does_not_replay_the_first_proposals(tmp_path, data_dir, critics_dir, sweep_file):
    from search.space import suggest

    spec, _ = read_sweep_file(sweep_file(tmp_path, data_dir, critics_dir, n_trials=4))
    first = open_study(spec)
    a = suggest(first.ask(), spec.space)
    b = suggest(open_study(spec).ask(), spec.space)  # the next driver, same sampler seed in the file
    assert a != b


def test_one_driver_per_sweep_and_a_torn_journal_line_is_repaired(tmp_path, data_dir, critics_dir, sweep_file):
    from search.errors import SweepError
    from search.study import JOURNAL, driver_lock

    spec, _ = read_sweep_file(sweep_file(tmp_path, data_dir, critics_dir))
    study = open_study(spec)
    study.tell(study.ask(), 1.0)
    with (spec.dir() / JOURNAL).open("ab") as f:
        f.write(b'{"op_code": 4, "worker_id": "x", "study_id"')  # a driver killed inside an append
    with driver_lock(spec.dir()):
        with pytest.raises(SweepError, match="another driver"):
            with driver_lock(spec.dir()):
                pass
        study = load_study(spec)
        study.tell(study.ask(), 2.0)  # the journal takes appends again
    assert [t.value for t in load_study(spec).trials] == [1.0, 2.0]


def test_warm_start_configurations_are_enqueued_once_and_asked_first(tmp_path, data_dir, critics_dir, sweep_file):
    from search.space import suggest
    from search.study import enqueue_warm_start

    warm = {"configs": [{"w_prototype": 1.0}, {"w_prototype": 5.0}]}
    spec, _ = read_sweep_file(sweep_file(tmp_path, data_dir, critics_dir, n_trials=4, warm_start=warm))
    study = open_study(spec)
    assert enqueue_warm_start(study, spec) == 2
    assert enqueue_warm_start(open_study(spec), spec) == 0  # the next driver run does not enqueue them again
    first = [suggest(study.ask(), spec.space) for _ in range(3)]
    assert first[:2] == [{"w_prototype": 1.0}, {"w_prototype": 5.0}] and first[2] not in first[:2]


def test_the_initial_design_is_enqueued_once_into_the_journal_and_a_warm_start_replaces_it(tmp_path, data_dir,
                                                                                            critics_dir, sweep_file):
    from search.samplers import initial_design
    from search.space import suggest
    from search.study import enqueue_initial_design

    families = {"families": {"none": {}, "kl": {"low": 1.0e-3, "high": 1.0}, "prototype": {"low": 0.1, "high": 100}}}
    spec, _ = read_sweep_file(sweep_file(tmp_path / "a", data_dir, critics_dir, n_trials=6, search=families,
                                         sampler={"name": "tpe", "seed": 1}))
    assert enqueue_initial_design(open_study(spec), spec) == 3
    study = open_study(spec)  # a driver restart: the design is in the journal, not enqueued again
    assert enqueue_initial_design(study, spec) == 0
    asked = [suggest(study.ask(), spec.space) for _ in range(4)]
    assert asked[:3] == initial_design(spec) and len(load_study(spec).trials) == 4

    warm = {"configs": [{"family": "prototype", "w_prototype": 3.0}]}
    spec, _ = read_sweep_file(sweep_file(tmp_path / "b", data_dir, critics_dir, n_trials=6, search=families,
                                         sampler={"name": "tpe"}, warm_start=warm))
    assert enqueue_initial_design(open_study(spec), spec) == 0


@pytest.mark.slow  # a third Ray sweep: about 35 s on a busy 2-core machine
def test_trials_all_failing_the_same_way_stop_the_run_early(local_ray, tmp_path, data_dir, critics_dir, sweep_file):
    # Every configuration diverges at the first step (a fixed prototype weight of 1e38): after three identical
    # failures the driver stops instead of spending the whole budget on them.
    path = sweep_file(tmp_path, data_dir, critics_dir, name="broken", n_trials=6, max_concurrent=1,
                      train={"rae": {"epochs": 1, "regularizers": {"prototype": 1.0e38}}},
                      search={"params": {"guidance": {"low": 0.5, "high": 2.0}}})
    spec, raw = read_sweep_file(path)
    lines: list[str] = []
    outcome = run_sweep(spec, raw, echo=lines.append)
    assert outcome.aborted and "the first 3 trials all failed with: TrainingDiverged" in outcome.aborted
    assert outcome.counts["FAIL"] == 3 and outcome.counts["COMPLETE"] == 0 and outcome.counts["RUNNING"] == 0
    assert sorted(read_results(spec.dir())["state"]) == ["FAIL"] * 3
    assert any(line.startswith("stopped: the first 3 trials") for line in lines)


def test_a_changed_sweep_file_may_grow_but_not_change_shape(tmp_path, data_dir, critics_dir, sweep_file):
    from search.errors import SweepError
    from search.study import check_saved_spec, save_spec

    spec, raw = read_sweep_file(sweep_file(tmp_path, data_dir, critics_dir, name="shape"))
    save_spec(spec, raw)
    for allowed in ({"n_trials": 9}, {"max_concurrent": 1, "resources": {"cpu": 2}}, {"sampler": "random"},
                    {"pruner": {"name": "median"}}, {"train": {"data": {"data_dir": str(data_dir) + "/"}}}):
        check_saved_spec(read_sweep_file(sweep_file(tmp_path / "ok", data_dir, critics_dir, name="shape",
                                                    root=spec.root, **allowed))[0])
    for change, key in (({"train": {"rae": {"epochs": 2}}}, "train.rae.epochs: 1 before, 2 now"),
                        ({"evaluation": {"sampler": "ddim", "steps": 3, "critics": critics_dir}}, "evaluation: "),
                        ({"search": {"regularizers": {"barlow": {"low": 0.1, "high": 10.0}}}}, "search: ")):
        changed = read_sweep_file(sweep_file(tmp_path / "bad", data_dir, critics_dir, name="shape", root=spec.root,
                                             **change))[0]
        with pytest.raises(SweepError, match=key.replace(".", r"\.")):
            check_saved_spec(changed)

    grid = {"search": {"regularizers": {"prototype": {"choices": [1.0, 2.0]}}}}
    spec, raw = read_sweep_file(sweep_file(tmp_path / "g", data_dir, critics_dir, name="grid", sampler="grid", **grid))
    save_spec(spec, raw)
    to_tpe = read_sweep_file(sweep_file(tmp_path / "g2", data_dir, critics_dir, name="grid", root=spec.root, **grid))
    with pytest.raises(SweepError, match="sampler.name: the sweep 'grid'"):
        check_saved_spec(to_tpe[0])


def test_a_preset_that_changed_since_the_sweep_started_is_refused_unless_the_old_value_is_written_out(
        tmp_path, data_dir, critics_dir, sweep_file, monkeypatch):
    """The same sweep file, but the quick preset trains its LDM at another rate in a later version: resuming would
    train the rest of the sweep with another recipe, so it is refused, and writing the old value in the file's
    train section lets the sweep go on with the recipe it started with."""
    import copy

    from models import config
    from search.errors import SweepError
    from search.study import RESOLVED_TRAIN, check_saved_spec, save_spec

    spec, raw = read_sweep_file(sweep_file(tmp_path, data_dir, critics_dir, name="preset"))
    save_spec(spec, raw)
    before = config.PRESETS["quick"]["ldm"]["lr"]
    assert yaml.safe_load((spec.dir() / RESOLVED_TRAIN).read_text())["ldm"]["lr"] == before
    presets = copy.deepcopy(config.PRESETS)
    presets["quick"]["ldm"]["lr"] = before * 2
    monkeypatch.setattr(config, "PRESETS", presets)
    again = read_sweep_file(sweep_file(tmp_path / "same", data_dir, critics_dir, name="preset", root=spec.root))[0]
    with pytest.raises(SweepError, match=rf"train\.ldm\.lr: {re.escape(repr(before))} before, "
                                         rf"{re.escape(repr(before * 2))} now.*preset 'quick' trains differently"):
        check_saved_spec(again)
    pinned = read_sweep_file(sweep_file(tmp_path / "pinned", data_dir, critics_dir, name="preset", root=spec.root,
                                        train={"ldm": {"epochs": 1, "lr": before}}))[0]
    check_saved_spec(pinned)


@pytest.mark.parametrize("suggested_before_the_kill", [0, 1, 2])
def test_a_trial_left_running_without_all_its_parameters_gets_the_missing_ones(data_dir, tmp_path,
                                                                               suggested_before_the_kill):
    """A driver killed between study.ask() and its last suggestion leaves a RUNNING trial with some or none of its
    parameters; the next driver continues it with the ones it has and samples only the others (it used to run
    it with the missing ones absent, and the trial failed)."""
    from search.driver import StudySearcher
    from search.spec import sweep_from_dict

    raw = {"name": "k", "root": str(tmp_path), "train": {"preset": "quick", "data": {"data_dir": str(data_dir)}},
           "search": {"regularizers": {"prototype": {"low": 0.1, "high": 10}, "barlow": {"low": 0.1, "high": 10}}},
           "sampler": {"name": "tpe", "seed": 0}, "n_trials": 2}
    spec = sweep_from_dict(raw, check_data=False)
    study = optuna.create_study(directions=spec.directions)
    dead = study.ask()  # what the killed driver got through
    held = {}
    for name in ["w_prototype", "w_barlow"][:suggested_before_the_kill]:
        held[name] = dead.suggest_float(name, 0.1, 10, log=True)
    (frozen,) = study.get_trials(states=[TrialState.RUNNING])
    searcher = StudySearcher(study, spec, raw, [frozen], echo=lambda _: None)
    config = searcher.suggest("tune-0")
    params = config["params"]
    assert set(params) == {"w_prototype", "w_barlow"} and config["trial"] == dead.number
    assert all(params[k] == v for k, v in held.items())  # what the trial had is kept
    assert study.get_trials()[0].params == params  # and the study records the rest
    assert config["train"]["rae"]["regularizers"] == {"prototype": params["w_prototype"],
                                                       "barlow": params["w_barlow"]}


def test_a_configuration_proposed_again_is_not_trained_again(local_ray, tmp_path, data_dir, critics_dir, sweep_file):
    """A sampler choosing from a list proposes finished configurations again (TPE does, to exploit; random here,
    4 trials over 2 choices, one at a time): the driver finishes such a trial with the earlier trial's result, a
    row that names it (reused_from) and no run directory, and the study gets the same value; rankings, costs and
    throughput count each configuration once."""
    from search.report import best_trials, cost_lines, status_text
    from search.trial import trial_dir

    path = sweep_file(tmp_path, data_dir, critics_dir, name="again", n_trials=4, max_concurrent=1,
                      search={"regularizers": {"prototype": {"choices": [1.0, 2.0]}}},
                      sampler={"name": "random", "seed": 0})
    spec, raw = read_sweep_file(path)
    lines: list[str] = []
    outcome = run_sweep(spec, raw, echo=lines.append)
    df = read_results(spec.dir()).set_index("trial")
    study = load_study(spec)
    assert outcome.problems == [] and outcome.ran == 4 and sorted(df.index) == [0, 1, 2, 3]
    trained = df[df["reused_from"].isna()]
    reused = df[df["reused_from"].notna()]
    assert len(trained) == trained["param.w_prototype"].nunique() == 2  # each choice trained once
    assert outcome.reused == len(reused) == 2
    for n, row in reused.iterrows():
        twin = int(row["reused_from"])
        assert twin < n and twin in trained.index and row["param.w_prototype"] == df.loc[twin, "param.w_prototype"]
        assert row["state"] == "COMPLETE" and row["distance"] == df.loc[twin, "distance"]
        assert study.trials[n].values == study.trials[twin].values
        assert row["run_dir"] == df.loc[twin, "run_dir"]  # the samples that scored it
        assert pd.isna(row["wall_total_s"]) and pd.isna(row["node"])  # nothing ran
        assert not (trial_dir(spec.dir(), n) / "run").exists()
        assert any(f"trial {n}:" in ln and f"finished already as trial {twin}" in ln for ln in lines)
    table = df.reset_index()
    assert sorted(best_trials(table, 10)["trial"]) == sorted(trained.index)
    assert "2 of them proposed a configuration that had finished already" in status_text(table, n_trials=4)
    assert "(2 trials in" in cost_lines(table)[-1]  # throughput over the trials that ran


def test_a_configuration_proposed_while_it_trains_waits_for_that_trial(local_ray, tmp_path, data_dir, critics_dir,
                                                                        sweep_file):
    """Two slots and one configuration: the trials proposed while trial 0 trains it wait for its result instead of
    training it beside it, then reuse it; one training in all."""
    path = sweep_file(tmp_path, data_dir, critics_dir, name="twins", n_trials=3, max_concurrent=2,
                      search={"regularizers": {"prototype": {"choices": [1.0]}}}, sampler={"name": "random", "seed": 0})
    spec, raw = read_sweep_file(path)
    lines: list[str] = []
    outcome = run_sweep(spec, raw, echo=lines.append)
    df = read_results(spec.dir()).set_index("trial")
    assert outcome.problems == [] and outcome.ran == 3 and outcome.reused == 2
    assert df["reused_from"].isna().sum() == 1 and df["reused_from"].dropna().tolist() == [0.0, 0.0]
    assert sum("is what trial 0 is training now" in ln for ln in lines) == 2, lines
    assert [ln for ln in lines if ": start " in ln] == [ln for ln in lines if ln.startswith("trial 0: start")]
    assert load_study(spec).trials[2].values == load_study(spec).trials[0].values


def test_a_screen_runs_first_then_the_rest_of_the_grid_once(local_ray, tmp_path, data_dir, critics_dir, sweep_file):
    """sampler grid + warm_start {parquet: an earlier (cheaper) sweep, best: 1}: the earlier sweep's nearest
    configuration trains first, then the rest of the grid in file order, every grid point once, nothing reused."""
    from search.space import parse_space

    space = parse_space({"regularizers": {"prototype": {"choices": [1.0, 2.0, 3.0]}}}, grid=True)
    screen = tmp_path / "screen"
    for n, (w, distance) in enumerate([(1.0, 0.6), (3.0, 0.2), (2.0, 0.4)]):
        write_trial_row(screen, {"sweep": "screen", "trial": n, "state": "COMPLETE", "distance": distance,
                                 "params": {"w_prototype": w}}, space=space)
    path = sweep_file(tmp_path, data_dir, critics_dir, name="screened", max_concurrent=1,
                      search={"regularizers": {"prototype": {"choices": [1.0, 2.0, 3.0]}}}, sampler={"name": "grid"},
                      n_trials=3, warm_start={"parquet": str(screen), "best": 1})
    spec, raw = read_sweep_file(path)
    lines: list[str] = []
    outcome = run_sweep(spec, raw, echo=lines.append)
    df = read_results(spec.dir()).sort_values("trial")
    assert outcome.problems == [] and outcome.ran == 3 and outcome.reused == 0
    assert list(df["param.w_prototype"]) == [3.0, 1.0, 2.0] and set(df["state"]) == {"COMPLETE"}
    assert "warm start: 1 configurations enqueued" in lines
