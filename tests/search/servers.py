"""Real servers on loopback for the storage tests, started in a temporary directory and stopped afterwards.

postgres_server: Debian's PostgreSQL (initdb + pg_ctl) with password (SCRAM) authentication on 127.0.0.1 only;
s3_server: moto's S3 server mode. Both take a free port; neither listens on other interfaces.
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
from pathlib import Path
from typing import Iterator

import pytest

S3_ENV = {  # the AWS SDK must never probe the instance-metadata address or look for real credentials
    "AWS_EC2_METADATA_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "humanlike-test", "AWS_SECRET_ACCESS_KEY": "humanlike-test",
}


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
