"""A decoded, validated copy of each dataset on disk, so a process reads it in a fraction of a second.

Decoding Omniglot's 32,460 PNG drawings (or its npz), resizing them to 48x48 and computing every class's medoid
takes 3.5-13 s per process; a sweep does it in the driver's preflight and again in every Ray worker. The result,
an ImageSet, is stored once as an uncompressed npz (about 75 MB for Omniglot) and read back with np.load.

Key: the dataset's name, CACHE_FORMAT (bumped whenever a loader's output changes) and the sha256 of every source
file the loader reads (for an extracted folder of PNGs: of its listing with sizes and modification times). Hashing
a large file is slow, so each file's sha256 is remembered beside the cache against its (size, mtime, inode); a file
that changes gets a new hash, and so a new key. Nothing is written into the data directory.

    <cache>/decoded/<dataset>-<key[:20]>.npz      the ImageSet's tensors, class names and fingerprint
    <cache>/decoded/hashes.json                   path -> [size, mtime_ns, inode, sha256]

<cache> is $HUMANLIKE_CACHE_DIR, else ~/.cache/humanlike. HUMANLIKE_DATA_CACHE=0 turns the cache off.
A cache file that cannot be read, or whose contents fail ImageSet's checks, is decoded again and replaced.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from models.atomic import atomic_open, atomic_write_text

CACHE_FORMAT = 1
CACHE_ENV = "HUMANLIKE_CACHE_DIR"
SWITCH_ENV = "HUMANLIKE_DATA_CACHE"
_TENSORS = ("train_images", "train_labels", "train_exemplars", "test_images", "test_labels", "test_exemplars")


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or "~/.cache/humanlike").expanduser() / "decoded"


def enabled() -> bool:
    return os.environ.get(SWITCH_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def source_files(name: str, root: Path) -> list[Path]:
    """The files (or folders) the loader of dataset `name` reads under data root `root`, as it would pick them."""
    if name == "omniglot":
        from .omniglot import CSV_NAME, SPLITS, find_source

        sources = [find_source(root / "omniglot", split) for split in SPLITS]
        out = [s for s in sources if s is not None]
        if any(s.suffix == ".npz" for s in out):
            out.append(root / "omniglot" / CSV_NAME)
        return out
    if name == "quickdraw":
        from .quickdraw import FOLDER, QUICKDRAWJS

        folder = root / FOLDER
        return [folder] if folder.is_dir() else [root / QUICKDRAWJS]
    from .qdfs import FILE

    return [root / FILE]


def cached_load(name: str, root: Path, load: Callable[[], "object"]):
    """The ImageSet of dataset `name` under `root`: from the cache when its key matches, else load() (which
    raises DataError for a bad file: nothing is cached then) and store the result for the next process."""
    if not enabled():
        return load()
    sources = source_files(name, root)
    if not sources or not all(p.exists() for p in sources):
        return load()  # the loader names what is missing
    hashes = _Hashes(cache_dir() / "hashes.json")
    key = hashlib.sha256(f"{name}\n{CACHE_FORMAT}\n".encode())
    for p in sources:
        key.update(f"{p.name}:{hashes.of(p)}\n".encode())
    hashes.save()
    path = cache_dir() / f"{name}-{key.hexdigest()[:20]}.npz"
    data = read(path)
    if data is None:
        data = load()
        write(path, data)
    return data


def read(path: Path):
    """The ImageSet stored at path, or None when it is missing, unreadable or fails ImageSet's checks."""
    import torch

    from .imageset import ImageSet

    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["format"]) != CACHE_FORMAT:
                return None
            tensors = {k: torch.from_numpy(z[k]) for k in _TENSORS}
            classes = {k: tuple(str(s) for s in z[k].tolist()) for k in ("train_classes", "test_classes")}
            data = ImageSet(name=str(z["name"]), **tensors, **classes)  # checks dtypes, shapes, labels
            fingerprint = str(z["fingerprint"])
    except Exception:  # noqa: BLE001 - a damaged cache file is decoded again, never trusted
        return None
    object.__setattr__(data, "_fingerprint", fingerprint)  # ImageSet.fingerprint's memo (computed at write)
    return data


def write(path: Path, data) -> None:
    """Store an ImageSet at path atomically (models.atomic). A cache that cannot be written (read-only home, full
    disk) costs only the next process's decode."""
    try:
        with atomic_open(path) as f:
            np.savez(f, format=np.int64(CACHE_FORMAT), name=np.str_(data.name),
                     fingerprint=np.str_(data.fingerprint()),
                     train_classes=np.array(data.train_classes, dtype=str),
                     test_classes=np.array(data.test_classes, dtype=str),
                     **{k: getattr(data, k).contiguous().numpy() for k in _TENSORS})
    except OSError:
        pass


class _Hashes:
    """sha256 of source files, remembered against (size, mtime_ns, inode) so that a big file is hashed once."""

    def __init__(self, path: Path) -> None:
        self.path, self.changed = path, False
        try:
            self.known = json.loads(path.read_text())
        except (OSError, ValueError):
            self.known = {}

    def of(self, p: Path) -> str:
        if p.is_dir():  # an extracted folder: its listing (hashing 32k PNGs would cost what decoding does)
            h = hashlib.sha256()
            for f in sorted(q for q in p.rglob("*") if q.is_file()):
                st = f.stat()
                h.update(f"{f.relative_to(p)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            return "listing:" + h.hexdigest()
        st = p.stat()
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        entry = self.known.get(str(p.resolve()))
        if entry and entry[:3] == stamp:
            return entry[3]
        from .download import sha256_file

        digest = sha256_file(p)
        self.known[str(p.resolve())] = stamp + [digest]
        self.changed = True
        return digest

    def save(self) -> None:
        if not self.changed:
            return
        try:
            atomic_write_text(self.path, json.dumps(self.known))
        except OSError:
            pass
