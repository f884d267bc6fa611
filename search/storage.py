"""Where a sweep keeps its results and artifacts: a local (or NFS) directory, or an S3-compatible bucket.

    root: sweeps                                           # a directory, as before (NFS: a mounted path)
    root: s3://bucket/prefix                               # AWS S3; credentials from AWS_* or ~/.aws
    root: s3://bucket/prefix?endpoint_override=10.0.0.5:9000&scheme=http&region=us-east-1   # MinIO, Ceph, moto

The sweep directory is then <root>/<name> on that filesystem. Every remote byte goes through pyarrow.fs
(FileSystem.from_uri parses the URI and its query options: region, scheme, endpoint_override,
allow_bucket_creation, allow_bucket_deletion, tls_ca_file_path, tls_verify_certificates; the AWS SDK reads
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_DEFAULT_REGION and AWS_ENDPOINT_URL_S3).
Credentials are never part of the URI: the URI is saved with the sweep and written into every result row.

`Location` addresses a remote file or directory with the few pathlib.Path operations the sweep code uses, so the
results store, the saved spec and the trials take either a Path or a Location (`as_path` picks). Writes are whole
objects: an S3 PUT (or a multipart upload, completed at close) makes an object appear entirely or not at all,
which is the atomicity a local tmp+rename gives. Object stores have no directories: mkdir does nothing there.

A trial whose sweep lives in a bucket trains in a local scratch directory and mirrors it (`RunMirror`): after
every epoch checkpoint the changed files are uploaded, and a trial that starts (again, maybe on another node)
first downloads the run directory, so it continues from the last mirrored epoch.
"""
from __future__ import annotations

import fnmatch
import functools
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from search.errors import SweepError

SCHEMES = ("s3",)
S3_OPTIONS = ("region", "scheme", "endpoint_override", "allow_bucket_creation", "allow_bucket_deletion",
              "tls_ca_file_path", "tls_verify_certificates")  # what pyarrow's S3 from_uri accepts


def is_remote(where: Any) -> bool:
    """True for a Location or a 'scheme://' string other than file://."""
    if isinstance(where, Location):
        return True
    return isinstance(where, str) and "://" in where and not where.startswith("file://")


def check_uri(uri: str, key: str) -> None:
    """Syntax of a remote root, checked without any network access (raises SweepError naming `key`)."""
    parts = urlsplit(uri)
    if parts.scheme not in SCHEMES:
        raise SweepError(f"{key}: unsupported storage scheme {parts.scheme + '://'!r} in {uri!r}; use a directory "
                         "(local or NFS) or s3://bucket/prefix")
    if "@" in parts.netloc:
        raise SweepError(f"{key}: credentials in the URI would be saved with the sweep and its rows; set "
                         "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment instead")
    if not parts.netloc:
        raise SweepError(f"{key}: {uri!r} names no bucket (expected s3://bucket/prefix)")
    if parts.fragment:
        raise SweepError(f"{key}: {uri!r} has a '#' fragment; percent-encode it in the prefix")
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        if name not in S3_OPTIONS:
            raise SweepError(f"{key}: unknown S3 option {name!r} in {uri!r} (known: {', '.join(S3_OPTIONS)})")


def as_path(where: str | os.PathLike | "Location") -> "Path | Location":
    """A Location for a remote URI (or a Location), else a local Path (file:// stripped)."""
    if isinstance(where, Location):
        return where
    if is_remote(str(where)) and not isinstance(where, Path):
        return Location(str(where))
    text = os.fspath(where)
    return Path(text[len("file://"):] if text.startswith("file://") else text)


@functools.lru_cache(maxsize=16)
def _filesystem(scheme: str, bucket: str, query: str):
    """One pyarrow filesystem per (scheme, bucket, options): from_uri may resolve the bucket's region once."""
    from pyarrow import fs

    return fs.FileSystem.from_uri(f"{scheme}://{bucket}" + (f"?{query}" if query else ""))[0]


class Location:
    """A file or directory on a remote pyarrow filesystem, addressed like a pathlib.Path (str() gives the URI)."""

    def __init__(self, uri: str) -> None:
        parts = urlsplit(uri)
        self.scheme, self.query = parts.scheme, parts.query
        self.path = (parts.netloc + "/" + parts.path.strip("/")).rstrip("/")  # bucket/key, as pyarrow names it

    @classmethod
    def _at(cls, like: "Location", path: str) -> "Location":
        loc = cls.__new__(cls)
        loc.scheme, loc.query, loc.path = like.scheme, like.query, path
        return loc

    @property
    def filesystem(self):
        return _filesystem(self.scheme, self.path.split("/", 1)[0], self.query)

    def __truediv__(self, part: str | os.PathLike) -> "Location":
        return Location._at(self, f"{self.path}/{os.fspath(part).strip('/')}")

    def __str__(self) -> str:
        return f"{self.scheme}://{self.path}" + (f"?{self.query}" if self.query else "")

    def __repr__(self) -> str:
        return f"Location({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Location) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __lt__(self, other: "Location") -> bool:  # sorted(files), as with Paths
        return (self.scheme, self.path) < (other.scheme, other.path)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def stem(self) -> str:
        return self.name.rsplit(".", 1)[0] if "." in self.name.lstrip(".") else self.name

    @property
    def parent(self) -> "Location":
        return Location._at(self, self.path.rsplit("/", 1)[0]) if "/" in self.path else self

    def resolve(self) -> "Location":
        return self  # already absolute

    expanduser = resolve

    def _type(self):
        return self.filesystem.get_file_info(self.path).type

    def exists(self) -> bool:
        from pyarrow import fs

        return self._type() != fs.FileType.NotFound

    def is_file(self) -> bool:
        from pyarrow import fs

        return self._type() == fs.FileType.File

    def is_dir(self) -> bool:
        from pyarrow import fs

        return self._type() == fs.FileType.Directory

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        pass  # object stores have no directories; a key's prefix exists as soon as an object is written under it

    def read_bytes(self) -> bytes:
        with self.filesystem.open_input_stream(self.path) as f:
            return f.read()

    def read_text(self) -> str:
        return self.read_bytes().decode()

    def write_bytes(self, data: bytes) -> None:
        """The whole object at once: it appears complete at close or not at all (a killed writer leaves the old)."""
        with self.filesystem.open_output_stream(self.path) as f:
            f.write(data)

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode())

    def unlink(self, missing_ok: bool = False) -> None:
        if missing_ok and not self.exists():
            return
        self.filesystem.delete_file(self.path)

    def files(self, recursive: bool = False) -> list["Location"]:
        """The files under this directory (none when it does not exist), sorted by path."""
        from pyarrow import fs

        infos = self.filesystem.get_file_info(fs.FileSelector(self.path, allow_not_found=True, recursive=recursive))
        return sorted((Location._at(self, i.path) for i in infos if i.type == fs.FileType.File),
                      key=lambda loc: loc.path)

    def glob(self, pattern: str) -> list["Location"]:
        """Files of this directory whose name matches `pattern` (one level, like Path.glob('trial_*.parquet'))."""
        return [f for f in self.files() if fnmatch.fnmatchcase(f.name, pattern)]


# --- helpers the sweep code calls with a Path or a Location ------------------------------------------------------


def write_atomic(where: Path | Location, data: bytes) -> None:
    """Replace a file atomically: tmp+fsync+rename locally, one whole-object write remotely."""
    if isinstance(where, Location):
        where.write_bytes(data)
    else:
        from models.atomic import atomic_write_bytes

        atomic_write_bytes(where, data)


def read_parquet(where: Path | Location):
    """A Parquet file as an Arrow table, through the file's filesystem."""
    import pyarrow.parquet as pq

    if isinstance(where, Location):
        return pq.read_table(where.path, filesystem=where.filesystem)
    return pq.read_table(where)


def tune_storage(where: Path | Location) -> dict[str, Any]:
    """RunConfig's storage_path (and storage_filesystem for a bucket) for Tune's experiment directory."""
    if isinstance(where, Location):
        return {"storage_path": where.path, "storage_filesystem": where.filesystem}
    return {"storage_path": str(Path(where).resolve())}


def probe(where: Path | Location, key: str = "root") -> None:
    """Reach a remote sweep directory once (before Ray starts), so that a wrong endpoint, bucket or credentials
    stop the command with a message naming `key` instead of failing every trial."""
    if not isinstance(where, Location):
        return
    bucket = Location._at(where, where.path.split("/", 1)[0])
    try:
        found = bucket.is_dir()
    except Exception as exc:  # noqa: BLE001 - pyarrow raises OSError, ArrowInvalid, ... for unreachable stores
        raise SweepError(f"{key}: cannot reach {where}: {type(exc).__name__}: {exc}") from None
    if not found:
        raise SweepError(f"{key}: bucket {bucket.name!r} of {where} does not exist (or these credentials cannot "
                         "see it); create it first")


# --- trial run directories in a bucket ----------------------------------------------------------------------------


def scratch_dir(remote: Location) -> Path:
    """The local directory a trial trains in when its run directory is remote, on the node that runs the trial:
    <$HUMANLIKE_SCRATCH, default <temp dir>/humanlike-runs>/<hash of the URI>/<its name>."""
    base = Path(os.environ.get("HUMANLIKE_SCRATCH") or Path(tempfile.gettempdir()) / "humanlike-runs")
    return base / hashlib.sha256(str(remote).encode()).hexdigest()[:16] / remote.name


class RunMirror:
    """A trial's run directory: trained in `local`, mirrored to `remote` (None: the run directory is local, and
    restore/push do nothing). Not thread-safe: one trial process owns it (under the trial lock)."""

    def __init__(self, local: Path, remote: Location | None) -> None:
        self.local, self.remote = Path(local), remote
        self._pushed: dict[str, tuple[int, int]] = {}  # relative name -> (size, mtime_ns) last uploaded

    @classmethod
    def for_run_dir(cls, run_dir: str) -> "RunMirror":
        where = as_path(run_dir)
        return cls(scratch_dir(where), where) if isinstance(where, Location) else cls(where, None)

    def restore(self) -> int:
        """Make the local directory a copy of the remote one (the mirror is the truth: a local copy may be left by an
        earlier attempt on this node, or by an earlier sweep of the same URI). Returns the number of files."""
        if self.remote is None:
            return 0
        import shutil

        from pyarrow import fs

        remote_files = self.remote.files(recursive=True)
        shutil.rmtree(self.local, ignore_errors=True)
        self.local.mkdir(parents=True, exist_ok=True)
        if remote_files:
            fs.copy_files(self.remote.path, str(self.local), source_filesystem=self.remote.filesystem,
                          destination_filesystem=fs.LocalFileSystem())
        self._pushed = {str(p.relative_to(self.local)): _stamp(p) for p in self.local.rglob("*") if p.is_file()}
        return len(remote_files)

    def push(self) -> int:
        """Upload the files changed since the last push (each upload is a whole object); config first, so that a
        checkpoint never appears without the config it belongs to. Returns the number uploaded."""
        if self.remote is None or not self.local.is_dir():
            return 0
        from pyarrow import fs

        changed = [p for p in self.local.rglob("*") if p.is_file() and not p.name.startswith(".")
                   and self._pushed.get(str(p.relative_to(self.local))) != _stamp(p)]
        changed.sort(key=lambda p: (p.suffix != ".yaml", str(p)))
        for p in changed:
            rel = str(p.relative_to(self.local))
            stamp = _stamp(p)
            fs.copy_files(str(p), (self.remote / rel).path, source_filesystem=fs.LocalFileSystem(),
                          destination_filesystem=self.remote.filesystem)
            self._pushed[rel] = stamp
        return len(changed)


    def discard(self) -> None:
        """Free the node's scratch space once everything is mirrored (the trial's row is written)."""
        if self.remote is not None:
            import shutil

            shutil.rmtree(self.local, ignore_errors=True)


def _stamp(p: Path) -> tuple[int, int]:
    st = p.stat()
    return st.st_size, st.st_mtime_ns
