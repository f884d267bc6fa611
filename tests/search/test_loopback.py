"""The embedded Ray of a local sweep listens on loopback only, and a SIGKILLed driver's Ray is ended by the next run.

A real `humanlike sweep run` in a subprocess (real Ray, real trials). While its trials train, `ss -ltnp` lists
every listening TCP socket of the machine; every socket of the sweep's processes (the driver and each process
whose command line names its Ray session directory: GCS, raylet, dashboard and runtime-env agents, workers) must
be bound to 127.0.0.1. Then the driver is SIGKILLed: Ray's processes outlive it, and the same command run again
ends them (only them: found by the session directory the dead driver recorded) before it finishes the sweep.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from search.local_ray import RECORD, session_processes

REPO = Path(__file__).resolve().parents[2]
LOOPBACK = {"127.0.0.1", "[::ffff:127.0.0.1]", "[::1]"}
_LISTENER = re.compile(r"^LISTEN\s+\d+\s+\d+\s+(\S+):(\d+)\s+\S+\s+users:\((.*)\)\s*$")
_USER = re.compile(r'\("([^"]+)",pid=(\d+)')


def listeners() -> list[tuple[str, int, str, int]]:
    """(local address, port, process name, pid) of every listening TCP socket that ss can attribute."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        line = "LISTEN " + line.split(None, 1)[1] if line.startswith("LISTEN") else line
        m = _LISTENER.match(line)
        if m:
            for name, pid in _USER.findall(m.group(3)):
                found.append((m.group(1), int(m.group(2)), name, int(pid)))
    return found


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_embedded_ray_listens_on_loopback_only(tmp_path):
    """The quick check (no trials): the embedded Ray the driver starts, in this process."""
    import ray

    from search.local_ray import start

    stop = start(1, None, tmp_path)
    try:
        session = json.loads((tmp_path / RECORD).read_text())["session_dir"]
        assert ray.nodes()[0]["NodeManagerAddress"] == "127.0.0.1"
        ours = set(session_processes(session)) | {os.getpid()}
        sockets = [s for s in listeners() if s[3] in ours]
        assert {"gcs_server", "raylet"} <= {s[2] for s in sockets}, sockets
        assert [s for s in sockets if s[0] not in LOOPBACK] == []
    finally:
        stop()
    assert not (tmp_path / RECORD).exists()
    assert os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") is None  # undone: a later `ray start` can join


def test_a_killed_drivers_ray_is_ended_from_its_record(tmp_path):
    """A process that started the embedded Ray is SIGKILLed; end_orphans ends what it left, by its record."""
    from search.local_ray import end_orphans

    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from search.local_ray import start; "
         f"start(1, None, Path({str(tmp_path)!r})); print('up', flush=True); time.sleep(600)"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert child.stdout.readline().strip() == "up"
        session = json.loads((tmp_path / RECORD).read_text())["session_dir"]
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        left = session_processes(session)
        assert left  # Ray outlives the process that started it
        found, ended = end_orphans(tmp_path)
        # Ray's daemons outlive the driver and are ended here; some workers exit by themselves meanwhile (on a
        # loaded machine, before end_orphans looks), so not every process of `left` is in `ended`
        assert found == session and set(left) & set(ended)
        assert session_processes(session) == [] and not (tmp_path / RECORD).exists()
        assert end_orphans(tmp_path) is None  # nothing recorded any more
    finally:
        if child.poll() is None:
            child.kill()
        for pid in session_processes(session) if "session" in locals() else []:
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_a_local_sweep_listens_on_loopback_and_its_orphans_are_ended(tmp_path, data_dir, critics_dir, sweep_file):
    path = sweep_file(tmp_path, data_dir, critics_dir, name="lo", n_trials=2, max_concurrent=2,
                      train={"rae": {"epochs": 3}, "ldm": {"epochs": 8}})
    sweep_dir = tmp_path / "sweeps" / "lo"
    command = [sys.executable, "-m", "search.cli", "sweep", "run", str(path)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    driver = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        record = _wait_for(lambda: (sweep_dir / RECORD).is_file() and json.loads((sweep_dir / RECORD).read_text()),
                           240, "the driver's Ray session record")
        assert record["driver_pid"] == driver.pid
        session = record["session_dir"]
        _wait_for(lambda: any((d / "progress.json").is_file() and
                              json.loads((d / "progress.json").read_text())["stage"] in ("rae", "ldm")
                              for d in sweep_dir.glob("trials/*")), 240, "a trial training")

        ours = set(session_processes(session)) | {driver.pid}
        sockets = [s for s in listeners() if s[3] in ours]
        names = {s[2] for s in sockets}
        assert {"gcs_server", "raylet"} <= names, sockets
        assert any(n.startswith("ray::") for n in names), sockets  # agents and workers
        beyond = [s for s in sockets if s[0] not in LOOPBACK]
        assert not beyond, f"Ray listening beyond loopback: {beyond}"

        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
        time.sleep(2)
        orphans = session_processes(session)
        assert orphans, "expected the killed driver's Ray processes to outlive it"
    finally:
        if driver.poll() is None:
            driver.kill()

    # Another Ray instance on this machine (someone else's): the cleanup must leave it alone.
    neighbour = subprocess.Popen(
        [sys.executable, "-c", "import ray, time; ray.init(address='local', num_cpus=1, include_dashboard=False); "
         "print(ray._private.worker._global_node.get_session_dir_path(), flush=True); time.sleep(900)"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    other = neighbour.stdout.readline().strip()
    try:
        others = session_processes(other)
        assert others
        rerun = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert "Ray processes a killed driver of this sweep left running" in rerun.stdout, rerun.stdout
        assert session_processes(session) == []  # every one of them, and ...
        assert set(others) <= set(session_processes(other)) and neighbour.poll() is None  # ... only them
        assert "Token authentication is enabled" in rerun.stdout + rerun.stderr  # Ray's default, kept
        assert not (sweep_dir / RECORD).exists()  # the clean stop removed its own record
        assert len(list((sweep_dir / "results").glob("trial_*.parquet"))) == 2
    finally:
        neighbour.terminate()
        neighbour.wait(timeout=30)
        time.sleep(2)
        for pid in session_processes(other):  # what the neighbour's Ray left behind
            os.kill(pid, signal.SIGKILL)
