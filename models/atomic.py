"""Atomic file writes: the one helper every durable write uses (checkpoints, result rows, evaluation files,
critics, caches, downloads).

A temporary file in the target's folder is written, flushed and fsync'ed, then moved over the target with
os.replace, and the folder is fsync'ed so that the rename itself survives a power cut. A crash at any point
leaves either the old file or the new one, never half of one; on an error the temporary file is removed and the
target is untouched.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb", *, suffix: str = ".tmp") -> Iterator[IO]:
    """`with atomic_open(path) as f: f.write(...)`: f is a temporary file beside path; it replaces path only when
    the block ends without an exception. mode: 'wb' or 'w' (text, UTF-8)."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open: mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (POSIX); a filesystem or OS that cannot open a folder is left as it is."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
