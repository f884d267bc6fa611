"""Fixtures of the cluster tests: a real multi-node Ray cluster on loopback (`head`: a head node with the jobs API;
`cluster`: a head and a worker node). `ray start` processes with token authentication, their own temp dir and
ports, stopped by killing exactly the processes they started (other Ray instances on this machine -- other tests,
a benchmark -- are left alone: no `ray stop`).

Facts this relies on (notes/ray_optuna.md 2c, checked here with Ray 2.60): clients need RAY_AUTH_MODE=token and
the token; every node advertises the whole machine unless --memory/--object-store-memory say otherwise; the
processes a node starts carry its temp dir or the GCS port in their command line, or are children of those.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Iterator

import psutil
import pytest

RAY = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "ray"
MB = 1024 * 1024


def free_ports(n: int) -> list[int]:
    """n distinct TCP ports free on loopback right now (held open together, so they differ)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@dataclass
class LoopbackCluster:
    """A head and further nodes on 127.0.0.1; `env` is what a client (driver, `ray job`) needs to talk to it, and
    `ray` the venv's Ray command line."""

    ray: ClassVar[Path] = RAY

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rt", dir="/tmp")))  # short: sockets
    port: int = 0
    dashboard_port: int | None = None
    nodes: int = 0
    orphans: list = field(default_factory=list)  # processes of a killed node (no longer below a raylet)

    def __post_init__(self) -> None:
        token = self.root / "token"
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
                    "RAY_USAGE_STATS_ENABLED": "0", "OMP_WAIT_POLICY": "PASSIVE"}

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start_head(self, *, num_cpus: float, dashboard: bool = False, resources: dict | None = None) -> None:
        self.port, client, dash = free_ports(3)
        args = ["--head", f"--port={self.port}", f"--ray-client-server-port={client}"]
        if dashboard:  # the jobs API lives in the dashboard: bound to loopback only
            self.dashboard_port = dash
            args += ["--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}"]
        else:
            args += ["--include-dashboard=false"]
        self._start(args, num_cpus, resources)

    def add_node(self, *, num_cpus: float, num_gpus: float = 0, resources: dict | None = None) -> None:
        args = [f"--address={self.address}"] + ([f"--num-gpus={num_gpus}"] if num_gpus else [])
        self._start(args, num_cpus, resources)

    def _start(self, args: list[str], num_cpus: float, resources: dict | None) -> None:
        agent, grpc, metrics, env_agent, manager, objects = free_ports(6)
        cmd = [str(RAY), "start", *args, "--node-ip-address=127.0.0.1", f"--num-cpus={num_cpus}",
               f"--memory={1500 * MB}", f"--object-store-memory={100 * MB}", f"--temp-dir={self.root / 'ray'}",
               "--disable-usage-stats", f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={grpc}",
               f"--metrics-export-port={metrics}", f"--runtime-env-agent-port={env_agent}",
               f"--node-manager-port={manager}", f"--object-manager-port={objects}"]
        if resources:
            cmd.append(f"--resources={json.dumps(resources)}")
        done = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"ray start failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        self.nodes += 1

    def raylets(self) -> list[psutil.Process]:
        """This cluster's raylets, the head's first (started first)."""
        found = [p for p in self.processes() if _name(p) == "raylet"]
        return sorted(found, key=lambda p: p.create_time())

    def kill_node(self, raylet: psutil.Process) -> None:
        """SIGKILL one node's raylet, as a machine that dies would; its workers are remembered for stop()."""
        self.orphans += raylet.children(recursive=True)
        raylet.kill()

    @staticmethod
    def node_id(raylet: psutil.Process) -> str:
        """The Ray node id a raylet was started with (what ray.get_runtime_context().get_node_id() returns)."""
        return next(a.split("=", 1)[1] for a in raylet.cmdline() if a.startswith("--node_id="))

    def processes(self) -> list[psutil.Process]:
        """Every process of this cluster: its temp dir or GCS port in the command line, and their descendants."""
        port = re.compile(rf":{self.port}(\D|$)") if self.port else None
        roots = []
        for proc in psutil.process_iter(["pid", "name", "cmdline"]):
            line = " ".join(proc.info["cmdline"] or [])
            if proc.pid != os.getpid() and (str(self.root) in line or (port and port.search(line))):
                roots.append(proc)
        seen = {p.pid: p for p in roots}
        for proc in roots:
            try:
                for child in proc.children(recursive=True):
                    seen.setdefault(child.pid, child)
            except psutil.NoSuchProcess:
                pass
        return list(seen.values())

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a few seconds, to exactly this cluster's processes."""
        procs = self.processes() + [p for p in self.orphans if p.is_running()]
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            for proc in procs:
                try:
                    proc.send_signal(sig)
                except psutil.NoSuchProcess:
                    pass
            _, procs = psutil.wait_procs(procs, timeout=wait)
            if not procs:
                return
        time.sleep(0.5)


def _name(proc: psutil.Process) -> str:
    try:
        return proc.name()
    except psutil.NoSuchProcess:
        return ""


@pytest.fixture
def head() -> Iterator[LoopbackCluster]:
    """A one-CPU head node whose dashboard (and jobs API) listens on 127.0.0.1."""
    c = LoopbackCluster()
    try:
        c.start_head(num_cpus=1, dashboard=True)
        yield c
    finally:
        c.stop()


@pytest.fixture
def cluster() -> Iterator[LoopbackCluster]:
    """A one-CPU head and a one-CPU worker node (custom resource worker_node: 1)."""
    c = LoopbackCluster()
    try:
        c.start_head(num_cpus=1)
        c.add_node(num_cpus=1, resources={"worker_node": 1})
        yield c
    finally:
        c.stop()  # exactly this cluster's processes, even when the test failed
