"""load_dataset: name + data directory -> ImageSet.

Data directory resolution: the explicit data_dir, else $HUMANLIKE_DATA_DIR, else ~/.cache/humanlike. Only in the
last case, and only for Omniglot, missing files are downloaded (the official archives, sha256-verified); an
explicit or environment directory is never written to. QuickDraw and QuickDraw-FS are never downloaded: a
DataError says where their files go.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import data_error

if TYPE_CHECKING:
    from .imageset import ImageSet

ENV_VAR = "HUMANLIKE_DATA_DIR"
DEFAULT_DIR = Path("~/.cache/humanlike")
# The datasets load_dataset knows: the one list of their names (config validation and the CLIs' --dataset read
# it; this module imports no torch, so that stays cheap). A new dataset is a loader module and a branch below.
DATASETS = ("omniglot", "quickdraw", "qdfs")


def resolve_data_dir(data_dir: str | Path | None = None) -> tuple[Path, bool]:
    """(directory, is_default): data_dir, else $HUMANLIKE_DATA_DIR, else ~/.cache/humanlike (is_default=True)."""
    if data_dir is not None:
        return Path(data_dir).expanduser(), False
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser(), False
    return DEFAULT_DIR.expanduser(), True


def load_dataset(name: str, *, data_dir: str | Path | None = None) -> ImageSet:
    """Load 'omniglot', 'quickdraw' (defaults of load_quickdraw) or 'qdfs' as an ImageSet: from the decoded copy
    in the cache (models/data/cache.py) when the source files are unchanged, else decoded and cached."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {DATASETS}")
    from .cache import cached_load

    root, is_default = resolve_data_dir(data_dir)
    if name == "omniglot":
        from .omniglot import has_omniglot

        if is_default and not has_omniglot(root / "omniglot"):
            from .download import download_omniglot
            from .errors import DataError

            try:
                download_omniglot(root)
            except DataError as exc:  # offline, a proxy, a wrong checksum: say where a local copy can come from
                raise DataError(f"{exc}. Omniglot is not in {root / 'omniglot'} and could not be downloaded: "
                                f"point --data-dir (or {ENV_VAR}) at a directory that holds omniglot/ "
                                "(README, Data)") from exc
        elif not root.is_dir():
            raise data_error(root, f"data directory does not exist (from {'data_dir' if data_dir else ENV_VAR}); "
                             f"Omniglot is downloaded only into the default {DEFAULT_DIR}")
        from .omniglot import load_omniglot

        return cached_load(name, root, lambda: load_omniglot(root))
    if name == "quickdraw":  # the loaders' DataError names the exact path the files go to
        from .quickdraw import load_quickdraw

        return cached_load(name, root, lambda: load_quickdraw(root))
    from .qdfs import load_qdfs

    return cached_load(name, root, lambda: load_qdfs(root))
