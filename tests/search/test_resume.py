"""Interrupted sweeps resume: the driver as a real subprocess (`python -m search.cli sweep run`) SIGKILLed at three
moments and run again, on every storage backend (a journal file, PostgreSQL, an S3 bucket: conftest.py's
`storage_backend`); stopped by SIGINT and SIGTERM, then resumed; a finished sweep extended.

Slow (several minutes per backend on 2 cores): run with `pytest -m slow tests/search/test_resume.py`.
"""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from optuna.trial import TrialState

from search.results import read_results
from search.storage import Location, as_path
from search.study import check_agreement, load_study, read_sweep_file

pytestmark = pytest.mark.slow
N_TRIALS = 5
TIMEOUT_S = 1500


class Driver:
    """`humanlike sweep ARGS` in a subprocess; its output goes to a log file (a pipe could fill and block it)."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.log = cwd / f"driver-{time.monotonic_ns()}.log"
        self.proc = subprocess.Popen([sys.executable, "-m", "search.cli", "sweep", *args], cwd=cwd,
                                     stdout=self.log.open("w"), stderr=subprocess.STDOUT)

    def wait_until(self, condition, what: str) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not condition():
            assert self.proc.poll() is None, f"the driver ended before {what}:\n{self.text()}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{self.text()}"
            time.sleep(0.2)

    def signal(self, signum: int) -> None:
        os.kill(self.proc.pid, signum)

    def finish(self) -> int:
        try:
            return self.proc.wait(timeout=TIMEOUT_S)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    def text(self) -> str:
        return self.log.read_text()


def _rows(spec) -> dict[int, str]:
    """{trial: sha256 of its row file}: a row that is written again (a trial run twice) changes its hash."""
    files = sorted((spec.dir() / "results").glob("trial_*.parquet")) if (spec.dir() / "results").is_dir() else []
    return {int(f.stem.split("_")[1]): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def _assert_consistent(spec, n: int) -> None:
    """Exactly n distinct trials, none RUNNING, and the Parquet store matches the study trial for trial."""
    study = load_study(spec)
    df = read_results(spec.dir())
    assert len(study.trials) == n and sorted(df["trial"]) == [t.number for t in study.trials]
    assert df["trial"].is_unique
    assert not [t for t in study.trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert {r.trial: r.state for r in df.itertuples()} == {t.number: t.state.name for t in study.trials}
    assert check_agreement(study, spec.dir()) == []


def _sha256(file) -> str:
    return hashlib.sha256(file.read_bytes()).hexdigest()


def _files(directory) -> list:
    """Every file under a local directory or a bucket prefix."""
    if isinstance(directory, Location):
        return directory.files(recursive=True)
    return [p for p in directory.rglob("*") if p.is_file()]


def _read_parquet(directory) -> pd.DataFrame:
    """A directory of Parquet files read with pandas through pyarrow (a bucket's through its filesystem)."""
    if isinstance(directory, Location):
        return pd.read_parquet(directory.path, filesystem=directory.filesystem)
    return pd.read_parquet(directory)


def test_sigkill_at_three_moments_then_the_same_command_finishes_the_sweep(storage_backend, tmp_path, data_dir,
                                                                          critics_dir, sweep_file, sweep_cli,
                                                                          monkeypatch):
    backend = storage_backend
    path = sweep_file(tmp_path, data_dir, critics_dir, name="resumed", n_trials=N_TRIALS, max_concurrent=2,
                      train={"ldm": {"epochs": 2}}, pruner={"name": "median", "n_startup_trials": 2},
                      **backend.sweep_keys())
    spec, _ = read_sweep_file(path)
    rae = spec.dir() / "trials" / "00000" / "run" / "rae.pt"
    frozen_rows: dict[int, str] = {}
    outputs: list[str] = []  # everything the drivers and the CLI printed

    # 1. During the first trials, on node a: trial 0's RAE checkpoint exists (a bucket's sweep: mirrored there),
    #    its LDM and evaluation have not run.
    monkeypatch.setenv("HUMANLIKE_SCRATCH", str(tmp_path / "node-a"))
    d = Driver(tmp_path, "run", str(path))
    d.wait_until(rae.is_file, "trial 0's RAE checkpoint")
    d.signal(signal.SIGKILL)
    d.finish()
    outputs.append(d.text())
    rae_0 = _sha256(rae)
    frozen_rows.update(_rows(spec))

    # 2. Mid-sweep, on another node (an empty scratch directory), resumed by name from the sweep's own copy of the
    #    sweep file (a bucket's sweep: the bucket's copy): two trials have their rows.
    monkeypatch.setenv("HUMANLIKE_SCRATCH", str(tmp_path / "node-b"))
    d = Driver(tmp_path, "resume", spec.name, "--root", backend.root)
    d.wait_until(lambda: len(_rows(spec)) >= 2, "two finished trials")
    d.signal(signal.SIGKILL)
    d.finish()
    outputs.append(d.text())
    assert "trial 0: continuing" in d.text()
    assert len(load_study(spec).trials) >= 2  # the killed drivers left their trials in the study
    frozen_rows.update(_rows(spec))

    # 3. Near the end, with the first command again: all but one trial have their rows.
    d = Driver(tmp_path, "run", str(path))
    d.wait_until(lambda: len(_rows(spec)) >= N_TRIALS - 1, f"{N_TRIALS - 1} finished trials")
    d.signal(signal.SIGKILL)
    d.finish()
    outputs.append(d.text())
    frozen_rows.update(_rows(spec))

    d = Driver(tmp_path, "run", str(path))
    assert d.finish() == 0, d.text()
    outputs.append(d.text())
    assert "most human-like configurations" in d.text()
    _assert_consistent(spec, N_TRIALS)
    final = _rows(spec)
    # No finished trial ran again (its row would have been rewritten) ...
    assert {k: final[k] for k in frozen_rows} == frozen_rows
    # ... and trial 0, killed mid-training, continued from its RAE checkpoint (on node b: from the mirrored one)
    # instead of training it again.
    assert _sha256(rae) == rae_0

    # The rows read back with pandas through pyarrow equal the study, trial for trial; each names its run directory
    # relative to the sweep directory, where the checkpoint of the last stage it reached is.
    df = _read_parquet(spec.dir() / "results").set_index("trial").sort_index()
    absolute = read_results(spec.dir()).set_index("trial")
    study = load_study(spec)
    assert list(df.index) == [t.number for t in study.trials]
    for t in study.trials:
        assert df.loc[t.number, "state"] == t.state.name
        if t.state.name == "COMPLETE":
            assert df.loc[t.number, "value_0"] == pytest.approx(t.value, rel=1e-12)
        assert df.loc[t.number, "run_dir"] == f"trials/{t.number:05d}/run"
        run_dir = absolute.loc[t.number, "run_dir"]
        assert run_dir == str(spec.dir() / "trials" / f"{t.number:05d}" / "run")
        reached_ldm = t.state.name == "COMPLETE" or df.loc[t.number, "last_step"] > 0  # PRUNED at step 0: RAE only
        if t.state.name == "COMPLETE":  # a continued trial's cost counts its earlier attempts' training too
            stages = df.loc[t.number, ["wall_rae_s", "wall_ldm_s", "wall_eval_s"]].sum()
            assert df.loc[t.number, "wall_total_s"] >= stages
        assert (as_path(run_dir) / ("ldm.pt" if reached_ldm else "rae.pt")).is_file()
    assert _files(spec.dir() / "tune"), "Tune's experiment state is in the sweep directory"
    assert not (tmp_path / "sweeps").exists()  # nothing fell back to the working directory

    out = tmp_path / "all.parquet"
    for args in (("status", spec.name), ("best", spec.name), ("export", spec.name, str(out))):
        done = sweep_cli(*args, "--root", backend.root, cwd=tmp_path)
        assert done.returncode == 0, (args, done.stderr)
        outputs.append(done.stdout + done.stderr)
        if args[0] == "status":
            assert f"{N_TRIALS}" in done.stdout, done.stderr
    assert pd.read_parquet(out).set_index("trial").sort_index()["state"].equals(df["state"])

    if backend.secret:  # PostgreSQL's password was only ever in the environment
        leaked = [str(p) for p in _files(spec.dir()) if backend.secret.encode() in p.read_bytes()]
        assert leaked == []  # not in the saved spec, the rows, Tune's files ...
        assert not [text for text in outputs if backend.secret in text]  # ... nor in any output

    # Finished trials freed the scratch space of the node they ran on (node b; node a keeps what the kill left).
    left = sorted((tmp_path / "node-b").rglob("*.pt"))
    assert not left


@pytest.fixture
def sweep(tmp_path, data_dir, critics_dir, sweep_file):
    path = sweep_file(tmp_path, data_dir, critics_dir, name="resumed", n_trials=N_TRIALS, max_concurrent=2,
                      train={"ldm": {"epochs": 2}}, pruner={"name": "median", "n_startup_trials": 2})
    spec, _ = read_sweep_file(path)
    return spec, path


def test_sigint_and_sigterm_stop_cleanly_resume_finishes_and_more_trials_extend_it(sweep, tmp_path):
    spec, path = sweep
    d = Driver(tmp_path, "run", str(path))
    d.wait_until(lambda: (spec.dir() / "trials" / "00000" / "run" / "rae.pt").is_file(), "trial 0's RAE")
    d.signal(signal.SIGINT)
    assert d.finish() == 130, d.text()
    assert "SIGINT: stopping" in d.text() and "humanlike sweep resume resumed" in d.text()
    study = load_study(spec)
    running = [t.number for t in study.trials if t.state == TrialState.RUNNING]
    assert 0 in running and not set(running) & set(_rows(spec))  # interrupted, not marked finished

    d = Driver(tmp_path, "resume", spec.name, "--root", spec.root)
    d.wait_until(lambda: len(_rows(spec)) >= 2, "two finished trials")
    d.signal(signal.SIGTERM)
    assert d.finish() == 130, d.text()
    assert "SIGTERM: stopping" in d.text()

    d = Driver(tmp_path, "resume", spec.name, "--root", spec.root)
    assert d.finish() == 0, d.text()
    _assert_consistent(spec, N_TRIALS)

    before = _rows(spec)
    d = Driver(tmp_path, "run", str(path), "--trials", str(N_TRIALS + 2))
    assert d.finish() == 0, d.text()
    _assert_consistent(spec, N_TRIALS + 2)
    after = _rows(spec)
    assert {k: after[k] for k in before} == before  # the first trials were not touched
