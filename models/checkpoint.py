"""Versioned checkpoints and crash-safe writes.

A checkpoint is a plain dict of tensors and builtins (so `torch.load(weights_only=True)` reads it) with
`format` and `version` fields. Every write goes through models.atomic (temporary file, fsync, os.replace), so a
crash leaves either the old file or the new one, never half of one. Every tensor is stored
on the CPU (a run trained on a GPU loads on a machine without one) and loaded onto the CPU.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from models.atomic import atomic_write_bytes

CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that is missing fields, of another kind or of an unknown version."""


def save_checkpoint(path: str | Path, kind: str, payload: dict[str, Any]) -> None:
    import io

    import torch

    buffer = io.BytesIO()
    torch.save({"format": f"humanlike.{kind}", "version": CHECKPOINT_VERSION, **on_cpu(payload)}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def on_cpu(obj: Any) -> Any:
    """`obj` (nested dicts, lists, tuples: model and optimizer state dicts) with every tensor moved to the CPU.

    A CPU tensor is returned as it is, and a dict keeps its type and a state dict's `_metadata` (the module
    versions load_state_dict reads), so a CPU run's checkpoint holds exactly what it held before.
    """
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        out = type(obj)((k, on_cpu(v)) for k, v in obj.items())
        if hasattr(obj, "_metadata"):
            out._metadata = obj._metadata
        return out
    if type(obj) in (list, tuple):
        return type(obj)(on_cpu(v) for v in obj)
    return obj


def load_checkpoint(path: str | Path, kind: str) -> dict[str, Any]:
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign files raise many different errors
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict) or data.get("format") != f"humanlike.{kind}":
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path}: expected a humanlike.{kind} checkpoint, found {found!r}")
    if data.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {data.get('version')!r}, this code reads version {CHECKPOINT_VERSION}"
        )
    return data
