"""Shared fixtures: the real data directory (../shared/data or $HUMANLIKE_DATA_DIR)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _data_dir() -> Path:
    env = os.environ.get("HUMANLIKE_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = _data_dir()
    if not (d / "omniglot").is_dir():
        pytest.fail(f"real data not found at {d}: set HUMANLIKE_DATA_DIR to the shared data directory")
    return d


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    import torch

    torch.set_num_threads(2)
