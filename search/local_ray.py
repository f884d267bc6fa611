"""The embedded Ray of a local sweep: on loopback only, and never outliving its driver for long.

Loopback. Ray gives a node the machine's network address and its gRPC servers (GCS, raylet, workers) listen on
every interface unless the node's address is 127.0.0.1; and it turns 127.0.0.1 into the network address unless
it runs in its single-machine mode (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, Ray's default on macOS and Windows).
start() sets that mode for this process and for the processes Ray starts, and names 127.0.0.1 as the node's
address: then GCS, raylet, workers and the dashboard and runtime-env agents all listen on 127.0.0.1 (Ray 2.60,
tests/search/test_loopback.py checks it with `ss -ltnp`). Token authentication stays on (Ray's default).

Orphans. A driver killed by SIGKILL cannot stop the Ray it started; its dashboard and runtime-env agents (and, for a
while, the rest) keep running and listening. start() records the Ray session directory and the processes of that
session in <lock dir>/ray_session.json; the next driver of the same sweep (holding the sweep's driver lock, so the
recorded driver is certainly gone) ends exactly those processes: a process is ended only when its command line
names the recorded session directory, so a reused process id is never touched. A clean stop removes the record.
"""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Callable

RECORD = "ray_session.json"
SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
LOOPBACK = "127.0.0.1"


def start(num_cpus: int | None, num_gpus: int | None, record_dir: Path | None) -> Callable[[], None]:
    """ray.init a new local instance bound to 127.0.0.1; returns the function that stops it (and undoes the
    single-machine mode, so that a later `ray start` from this process can still join clusters)."""
    import ray
    from ray._private import ray_constants

    before_env, before_flag = os.environ.get(SINGLE_MACHINE_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[SINGLE_MACHINE_ENV] = "0"  # Ray's processes (raylet, agents, workers) inherit it
    ray_constants.ENABLE_RAY_CLUSTER = False  # read when ray.init resolves the node's address in this process
    # address='local' always starts a new instance, even when a `ray start` cluster runs here (notes 2c).
    # Ray starts workers at nice 15 (so that they cannot starve its own daemons); here the trials are the
    # work the user asked for, and at nice 15 on a laptop or a shared box every other process outranks them
    # (measured: a trial's stages 2-3x slower than the same trial in a plain process at load 8).
    os.environ.setdefault("RAY_worker_niceness", "0")
    try:
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1, num_gpus=num_gpus,
                 include_dashboard=False, dashboard_host=LOOPBACK, _node_ip_address=LOOPBACK, log_to_driver=False)
    except BaseException:
        _restore(before_env, before_flag)
        raise
    session = session_dir()
    if record_dir is not None:
        write_record(record_dir, session)

    def stop() -> None:
        try:
            ray.shutdown()
        finally:
            _restore(before_env, before_flag)
            if record_dir is not None:
                (record_dir / RECORD).unlink(missing_ok=True)

    return stop


def _restore(env: str | None, flag: bool) -> None:
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = flag
    if env is None:
        os.environ.pop(SINGLE_MACHINE_ENV, None)
    else:
        os.environ[SINGLE_MACHINE_ENV] = env


def session_dir() -> str:
    import ray

    return ray._private.worker._global_node.get_session_dir_path()


def session_processes(session: str) -> list[int]:
    """Process ids on this machine that belong to the Ray instance of a session directory (GCS, raylet, agents,
    workers), this process excluded: its command line names the directory, or (processes that rename themselves,
    'ray::DashboardAgent', 'ray::IDLE') one of its open files lies in it (each writes its log there)."""
    found = []
    inside = session.rstrip("/") + "/"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if session in cmdline or any(os.readlink(fd).startswith(inside) for fd in (entry / "fd").iterdir()):
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or another user's process
            continue
    return sorted(found)


def write_record(record_dir: Path, session: str) -> None:
    from models.atomic import atomic_write_bytes

    record = {"driver_pid": os.getpid(), "session_dir": session, "pids": session_processes(session),
              "started_at": time.time()}
    record_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(record_dir / RECORD, json.dumps(record).encode())


def end_orphans(record_dir: Path, *, grace_s: float = 5.0) -> tuple[str, list[int]] | None:
    """End the Ray processes a killed driver of this sweep left (call under the sweep's driver lock). Returns
    (session dir, the processes ended) or None when there was no record."""
    path = record_dir / RECORD
    try:
        record = json.loads(path.read_text())
        session = str(record["session_dir"])
    except (OSError, ValueError, KeyError, TypeError):
        path.unlink(missing_ok=True)
        return None
    if not session or "session" not in Path(session).name:  # never match a command line by a short string
        path.unlink(missing_ok=True)
        return None
    pids = session_processes(session)  # the recorded ids too, but only while they still name the session
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and set(pids) & set(session_processes(session)):
        time.sleep(0.2)
    # SIGKILL what is left, and wait until the kernel has removed it: on a loaded machine a killed process stays
    # visible for a moment, and a raylet that was still starting a worker may have started one after the scan
    deadline = time.monotonic() + grace_s
    while (left := session_processes(session)) and time.monotonic() < deadline:
        for pid in left:
            _signal(pid, signal.SIGKILL)
        pids = sorted(set(pids) | set(left))
        time.sleep(0.2)
    path.unlink(missing_ok=True)
    return session, pids


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
