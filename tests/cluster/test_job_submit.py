"""`ray job submit` of a sweep against a loopback head (dashboard and jobs API on 127.0.0.1, token auth), with the
project as the job's working directory and the venv's python as entrypoint; `ray job stop` in the middle of a
trial, then the same sweep submitted again: it continues and ends with every trial exactly once. Slow (about 3
minutes on the shared 2-core machine)."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from optuna.trial import TrialState

from search.results import read_results
from search.study import check_agreement, load_study, read_sweep_file

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"
# What a user passes too (notes/readme_cluster.md): SIGTERM (Ray's default signal) and time to act on it.
RUNTIME_ENV = {"env_vars": {"RAY_JOB_STOP_SIGNAL": "SIGTERM", "RAY_JOB_STOP_WAIT_TIME_S": "60",
                            "OMP_WAIT_POLICY": "PASSIVE"}}


def _job(cluster, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`ray job ARGS` against the `head` fixture's jobs API."""
    command, *rest = args  # the address before the arguments: everything after `--` is the entrypoint
    address = f"--address=http://127.0.0.1:{cluster.dashboard_port}"
    return subprocess.run([str(cluster.ray), "job", command, address, *rest], env=cluster.env, capture_output=True,
                          text=True, timeout=timeout)


def _submit(cluster, job_id: str, sweep: Path) -> None:
    done = _job(cluster, "submit", f"--submission-id={job_id}", f"--working-dir={REPO}",
                f"--runtime-env-json={json.dumps(RUNTIME_ENV)}", "--no-wait", "--",
                str(PYTHON), "-m", "search.cli", "sweep", "run", str(sweep))
    assert done.returncode == 0, done.stdout + done.stderr


def _status(cluster, job_id: str) -> str:
    """SUCCEEDED, STOPPED, FAILED, RUNNING or PENDING, from the words `ray job status` prints."""
    out = _job(cluster, "status", job_id).stdout
    words = {"' succeeded": "SUCCEEDED", "' was stopped": "STOPPED", "' failed": "FAILED",
             "': RUNNING": "RUNNING", "': PENDING": "PENDING"}
    return next((state for word, state in words.items() if f"'{job_id}{word}" in out), out)


def _wait_status(cluster, job_id: str, states: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _status(cluster, job_id)
        if status in states:
            return status
        time.sleep(2.0)
    logs = _job(cluster, "logs", job_id).stdout
    raise AssertionError(f"job {job_id}: still {status!r} after {timeout:.0f} s:\n{logs}")


@pytest.mark.slow
def test_a_sweep_job_stopped_mid_trial_and_submitted_again_finishes_every_trial_once(head, tmp_path, data_dir,
                                                                                      critics_dir, sweep_file):
    # Nothing of the head's HTTP side listens on all interfaces: the dashboard (jobs API) is on loopback only.
    dash = [c.laddr.ip for p in head.processes() for c in _listening(p) if c.laddr.port == head.dashboard_port]
    assert dash and set(dash) == {"127.0.0.1"}, dash

    # Four RAE epochs (a checkpoint after each): the stop lands in the middle of the RAE stage, not in the short
    # rest of the trial, which Tune's graceful stop (up to 10 s) could let finish.
    path = sweep_file(tmp_path, data_dir, critics_dir, name="job", n_trials=3, max_concurrent=1,
                      train={"rae": {"epochs": 4}},
                      search={"regularizers": {"prototype": {"choices": [0.5, 1.0, 2.0]}}}, sampler={"name": "grid"},
                      resources={"cpu": 1})
    spec, _ = read_sweep_file(path)
    _submit(head, "sweep-a", path)
    # Stop once trial 0 has its row and trial 1 is half-way (its RAE checkpointed).
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        rows = read_results(spec.dir()) if (spec.dir() / "results").is_dir() else None
        if rows is not None and len(rows) == 1 and (spec.dir() / "trials" / "00001" / "run" / "rae.pt").is_file():
            break
        assert _status(head, "sweep-a") in ("PENDING", "RUNNING"), _job(head, "logs", "sweep-a").stdout
        time.sleep(1.0)
    else:
        raise AssertionError("trial 1 never got half-way:\n" + _job(head, "logs", "sweep-a").stdout)
    t_stop = time.monotonic()
    stopped = _job(head, "stop", "sweep-a", timeout=180)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert _wait_status(head, "sweep-a", {"STOPPED", "FAILED", "SUCCEEDED"}, 120) == "STOPPED"
    logs = _job(head, "logs", "sweep-a").stdout
    assert "SIGTERM: stopping" in logs, logs  # the driver's own handler ran (not Ray's SIGKILL)
    assert "interrupted: continue with" in logs, logs  # ... and the driver returned normally
    assert time.monotonic() - t_stop < 60, "the driver needed Ray's SIGKILL"
    study = load_study(spec)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.RUNNING]  # trial 1: continued later
    assert sorted(read_results(spec.dir())["trial"]) == [0]

    _submit(head, "sweep-b", path)  # the same command again
    assert _wait_status(head, "sweep-b", {"STOPPED", "FAILED", "SUCCEEDED"}, 400) == "SUCCEEDED", \
        _job(head, "logs", "sweep-b").stdout
    logs = _job(head, "logs", "sweep-b").stdout
    assert "trial 1: continuing (left RUNNING by an earlier driver)" in logs, logs
    study = load_study(spec)
    rows = read_results(spec.dir())
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3  # no new trial for the stopped one
    assert sorted(rows["trial"]) == [0, 1, 2] and set(rows["state"]) == {"COMPLETE"}
    assert check_agreement(study, spec.dir()) == []


def _listening(proc: psutil.Process):
    try:
        return [c for c in proc.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []
