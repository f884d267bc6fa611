"""Fetch the official Omniglot archives with sha256 verification (only used for the default cache directory).

The checksums and sizes are those of brendenlake/omniglot's python/images_*.zip as recorded in the
tensorflow/datasets url_checksums for the same URLs. A download goes to a temporary file beside the
target, is hashed while it streams, and only a verified file is moved into place (models.atomic), so a
half-written or tampered archive never sits under the real name.
"""
from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path

from models.atomic import atomic_open

from .errors import data_error

_BASE = "https://github.com/brendenlake/omniglot/raw/master/python/"
OMNIGLOT_ARCHIVES = {  # file name -> (url, sha256)
    "images_background.zip": (_BASE + "images_background.zip",
                              "ad41ab679c8b5d90b271ef46be6987cc81211774a695c29dcc5367b2b26ee640"),
    "images_evaluation.zip": (_BASE + "images_evaluation.zip",
                              "1f61a8f3366785b057fc117d9228e78a16e3d976c8953b2a10fcc74cf0609cee"),
}
_BLOCK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def fetch_verified(url: str, dest: str | Path, *, sha256: str, timeout: float = 60.0) -> Path:
    """Download url (https:// or file://) to dest if dest is not already a file with this sha256.

    Streams into a temporary file in dest's folder while hashing; on a match the file is moved to dest, on a
    mismatch (or any error) the temporary file is deleted and a DataError names the url and both hashes.
    """
    dest = Path(dest)
    if dest.is_file() and sha256_file(dest) == sha256:
        return dest
    try:
        h = hashlib.sha256()
        with atomic_open(dest, suffix=".part") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while block := response.read(_BLOCK):
                h.update(block)
                out.write(block)
            if h.hexdigest() != sha256:  # raised inside: the partial file is removed, dest is untouched
                raise data_error(url, f"sha256 mismatch: got {h.hexdigest()}, expected {sha256}; "
                                 f"nothing written to {dest}")
    except OSError as e:  # URLError, timeouts, disk errors
        raise data_error(url, f"download to {dest} failed ({e})") from e
    return dest


def download_omniglot(cache_dir: str | Path) -> Path:
    """Fetch images_background.zip and images_evaluation.zip into <cache_dir>/omniglot; returns that folder.

    cache_dir is a data root like load_dataset's data_dir. Files already there with the right hash are kept.
    """
    folder = Path(cache_dir).expanduser() / "omniglot"
    for name, (url, digest) in OMNIGLOT_ARCHIVES.items():
        fetch_verified(url, folder / name, sha256=digest)
    return folder
