"""The driver on a real local Ray, a real Optuna journal and real Parquet rows; study/rows reconciliation."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from search.driver import read_sweep_file, run_sweep
from search.results import read_results, write_trial_row
from search.study import check_agreement, load_study, open_study, settle_stale
from tests.search.test_trial import critics_dir, sweep_file  # noqa: F401 - critics_dir is a fixture

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def local_ray():
    import ray

    # A logical GPU, so that the sweep's fractional GPU request is really scheduled (notes 2e).
    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def small_sweep(local_ray, tmp_path_factory, data_dir, critics_dir):
    """Two trials at once on local Ray: the grid's first weight trains and evaluates, the second (1e38) makes
    the RAE loss infinite at its first step (TrainingDiverged) and must become a FAIL without stopping the sweep."""
    tmp = tmp_path_factory.mktemp("driver")
    path = sweep_file(tmp, data_dir, critics_dir, name="small",
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
    assert study.trials[ok].value == pytest.approx(df.loc[ok, "distance"])
    assert df.loc[bad, "error"].startswith("TrainingDiverged: rae loss became inf")
    assert any(f"trial {bad}: FAIL" in line for line in lines)
    # Both trials ran at the same time (2 slots of 1 CPU and half a logical GPU each).
    assert df.loc[bad, "started_at"] < df.loc[ok, "finished_at"]
    assert pd.read_parquet(spec.dir() / "results").shape[0] == 2  # the store reads as one table


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


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "search.cli", "sweep", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


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
}


def test_bad_sweep_files_exit_2_before_ray_and_leave_the_sweep_untouched(small_sweep, tmp_path, data_dir,
                                                                         critics_dir):
    spec, _, _, _ = small_sweep
    before = _hashes(spec.dir())
    for label, (change, message) in BAD.items():
        if isinstance(change, str):
            path = tmp_path / label
            path.write_text(change)
        else:  # the small sweep's own file (same name and root) with one mistake
            top = {"search": {"regularizers": {"prototype": {"choices": [1.0, 1.0e38]}}}, "sampler": {"name": "grid"},
                   "resources": {"cpu": 1, "gpu": 0.5}, "root": spec.root, **change}
            path = sweep_file(tmp_path / label, data_dir, critics_dir, name="small", **top)
        done = _cli("run", str(path), cwd=tmp_path)
        assert done.returncode == 2, (label, done.stdout, done.stderr)
        assert message in done.stderr, (label, done.stderr)
        assert "Started a local Ray instance" not in done.stderr + done.stdout, label
    assert _hashes(spec.dir()) == before
