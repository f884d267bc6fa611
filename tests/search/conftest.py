"""Fixtures of the search tests: `humanlike sweep` as a subprocess, and the storage backends a sweep can keep its
study and files in, with real servers on loopback for the remote ones.

`storage_backend` is parametrized over every backend (journal file, PostgreSQL, S3 bucket), so a test that takes
it runs once on each: one scenario, every backend (like optuna/testing/storages.py). `postgres` and `s3_bucket`
start a throwaway server in a temporary directory, on a free 127.0.0.1 port, once per test module; without
PostgreSQL's initdb/pg_ctl the tests that need it are skipped (with the reason), not the others (moto, the S3
server, is a test dependency of the package).
"""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

S3_ENV = {  # the AWS SDK must never probe the instance-metadata address or look for real credentials
    "AWS_EC2_METADATA_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "humanlike-test", "AWS_SECRET_ACCESS_KEY": "humanlike-test",
}
PG_PASSWORD = "pg-Secret-7f3a9c"


def sweep_command(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`humanlike sweep ARGS` run to its end (at most 2 minutes), its output captured."""
    return subprocess.run([sys.executable, "-m", "search.cli", "sweep", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="session")
def sweep_cli():
    """sweep_command: `sweep_cli("run", str(path), cwd=tmp_path) -> CompletedProcess`."""
    return sweep_command


# --- the storage backends -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostgresServer:
    """A PostgreSQL server with password authentication; the password is the one secret of its URL."""
    url: str  # postgresql://humanlike:<password>@127.0.0.1:<port>/postgres
    password: str


@dataclass(frozen=True)
class Bucket:
    """A bucket on moto's S3 server; the environment holds S3_ENV's credentials while it runs."""
    name: str
    endpoint: str  # 127.0.0.1:<port>

    def uri(self, prefix: str) -> str:
        """The sweep root `s3://<bucket>/<prefix>?...` that reaches this server."""
        return f"s3://{self.name}/{prefix}?endpoint_override={self.endpoint}&scheme=http&region=us-east-1"


@dataclass(frozen=True)
class StorageBackend:
    """Where a sweep keeps its study and its files: the sweep file's `root` and `storage` (None: the default, a
    journal file in the sweep directory), and a secret that must appear in no file and no output (None: none)."""
    root: str
    storage: str | None = None
    secret: str | None = None

    def sweep_keys(self) -> dict[str, str]:
        """The top-level keys of a sweep file that put the sweep here."""
        return {"root": self.root, **({"storage": self.storage} if self.storage else {})}


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server(PG_PASSWORD) as url:
        yield PostgresServer(url, PG_PASSWORD)


@pytest.fixture(scope="module")
def s3_bucket() -> Iterator[Bucket]:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in S3_ENV.items():
            mp.setenv(key, value)
        with s3_server("humanlike-test") as endpoint:
            yield Bucket("humanlike-test", endpoint)


@pytest.fixture(params=["journal", "postgresql", "s3"])
def storage_backend(request, tmp_path, monkeypatch) -> StorageBackend:
    """Each backend in turn: the default journal file beside local rows and runs; the study in PostgreSQL (its URL,
    password included, given only through the environment); rows and runs in an S3 bucket with the study in a
    journal file on the local filesystem beside it."""
    local = str(tmp_path / "store")
    if request.param == "journal":
        return StorageBackend(local)
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres")
        monkeypatch.setenv("HUMANLIKE_STUDY_DB", server.url)
        return StorageBackend(local, "env:HUMANLIKE_STUDY_DB", secret=server.password)
    bucket = request.getfixturevalue("s3_bucket")
    return StorageBackend(bucket.uri("team/sweeps"), f"journal:{tmp_path / 'study' / 'bucket.journal'}")


# --- the servers: PostgreSQL (initdb + pg_ctl, password (SCRAM) authentication) and moto's S3 server mode, each on
# a free port of 127.0.0.1 only, in a temporary directory removed afterwards ---------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen | None, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout_s:.0f} s")


def postgres_bin(name: str) -> str | None:
    """initdb / pg_ctl from PATH, else from Debian's versioned directory (the package does not link them)."""
    found = shutil.which(name)
    if found:
        return found
    versioned = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return versioned[-1] if versioned else None


@contextlib.contextmanager
def postgres_server(password: str) -> Iterator[str]:
    """A throwaway PostgreSQL server; yields postgresql://humanlike:<password>@127.0.0.1:<port>/postgres."""
    initdb, pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL's initdb/pg_ctl not found (Debian: apt-get install postgresql; .ci/run does that)")
    # The server refuses to run as root: then it runs as 'postgres' (or 'nobody'), in a directory under /tmp that
    # user can enter (pytest's tmp_path is private to root).
    user = None
    if os.geteuid() == 0:
        user = "postgres" if _user_exists("postgres") else "nobody"
    base = Path(tempfile.mkdtemp(prefix="humanlike-pg-"))
    (base / "pw").write_text(password + "\n")
    if user:
        entry = pwd.getpwnam(user)
        for p in (base, base / "pw"):
            os.chown(p, entry.pw_uid, entry.pw_gid)
    as_user = {"user": user} if user else {}
    data, port = base / "data", free_port()
    try:
        subprocess.run([initdb, "-D", str(data), "-U", "humanlike", "--pwfile", str(base / "pw"),
                        "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"], check=True, capture_output=True,
                       timeout=120, **as_user)
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' -c fsync=off"
        subprocess.run([pg_ctl, "-D", str(data), "-l", str(base / "server.log"), "-w", "-t", "60", "-o", options,
                        "start"], check=True, capture_output=True, timeout=90, **as_user)
        yield f"postgresql://humanlike:{password}@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=60,
                           **as_user)
        shutil.rmtree(base, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@contextlib.contextmanager
def s3_server(bucket: str) -> Iterator[str]:
    """moto's S3 server on a free loopback port with `bucket` created; yields the endpoint host:port. The caller
    sets S3_ENV (credentials and region) in the environment."""
    port = free_port()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **S3_ENV})
    try:
        _wait_for_port(port, proc, "moto's S3 server")
        from pyarrow import fs

        s3 = fs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http", region="us-east-1",
                             access_key=S3_ENV["AWS_ACCESS_KEY_ID"], secret_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
                             allow_bucket_creation=True)
        s3.create_dir(bucket)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
