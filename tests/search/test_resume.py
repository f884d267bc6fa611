"""Interrupted sweeps resume: the driver as a real subprocess (`python -m search.cli sweep run`), SIGKILLed at
three moments, stopped by SIGINT and SIGTERM, then run again with the same command; a finished sweep extended.

Slow (several minutes on 2 cores): run with `pytest -m slow tests/search/test_resume.py`.
"""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from search.study import read_sweep_file
from search.results import read_results
from search.study import check_agreement, load_study
from tests.search.test_trial import critics_dir, sweep_file  # noqa: F401 - critics_dir is a fixture

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


@pytest.fixture
def sweep(tmp_path, data_dir, critics_dir):
    path = sweep_file(tmp_path, data_dir, critics_dir, name="resumed", n_trials=N_TRIALS, max_concurrent=2,
                      train={"ldm": {"epochs": 2}}, pruner={"name": "median", "n_startup_trials": 2})
    spec, _ = read_sweep_file(path)
    return spec, path


def test_sigkill_at_three_moments_then_the_same_command_finishes_the_sweep(sweep, tmp_path):
    spec, path = sweep
    run = spec.dir() / "trials"
    frozen_rows: dict[int, str] = {}

    # 1. During the first trials: trial 0's RAE checkpoint exists, its LDM and evaluation have not run.
    d = Driver(tmp_path, "run", str(path))
    d.wait_until(lambda: (run / "00000" / "run" / "rae.pt").is_file(), "trial 0's RAE checkpoint")
    d.signal(signal.SIGKILL)
    d.finish()
    rae_0 = hashlib.sha256((run / "00000" / "run" / "rae.pt").read_bytes()).hexdigest()
    frozen_rows.update(_rows(spec))

    # 2. Mid-sweep: two trials have their rows.
    d = Driver(tmp_path, "run", str(path))
    d.wait_until(lambda: len(_rows(spec)) >= 2, "two finished trials")
    d.signal(signal.SIGKILL)
    d.finish()
    assert "trial 0: continuing" in d.text()
    frozen_rows.update(_rows(spec))

    # 3. Near the end: all but one trial have their rows.
    d = Driver(tmp_path, "run", str(path))
    d.wait_until(lambda: len(_rows(spec)) >= N_TRIALS - 1, f"{N_TRIALS - 1} finished trials")
    d.signal(signal.SIGKILL)
    d.finish()
    frozen_rows.update(_rows(spec))

    d = Driver(tmp_path, "run", str(path))
    assert d.finish() == 0, d.text()
    assert "most human-like configurations" in d.text()
    _assert_consistent(spec, N_TRIALS)
    final = _rows(spec)
    # No finished trial ran again (its row would have been rewritten) ...
    assert {k: final[k] for k in frozen_rows} == frozen_rows
    # ... and trial 0, killed mid-training, continued from its RAE checkpoint instead of training it again.
    assert hashlib.sha256((run / "00000" / "run" / "rae.pt").read_bytes()).hexdigest() == rae_0


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
