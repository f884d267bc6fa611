"""Datasets as ImageSets (uint8 tensors): Omniglot, our Quick, Draw! set and the paper's QuickDraw-FS.

Public names are imported lazily (PEP 562) so that `from models.data import DataError` does not import torch.
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "DataError": "errors",
    "ImageSet": "imageset",
    "to_float": "imageset",
    "load_dataset": "load",
    "resolve_data_dir": "load",
    "load_omniglot": "omniglot",
    "read_omniglot_raw": "omniglot",
    "load_quickdraw": "quickdraw",
    "load_qdfs": "qdfs",
    "download_omniglot": "download",
    "medoid_positions": "medoid",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .download import download_omniglot
    from .errors import DataError
    from .imageset import ImageSet, to_float
    from .load import load_dataset, resolve_data_dir
    from .medoid import medoid_positions
    from .omniglot import load_omniglot, read_omniglot_raw
    from .qdfs import load_qdfs
    from .quickdraw import load_quickdraw


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
