"""Shared fixtures: the real data directory (../shared/data or $HUMANLIKE_DATA_DIR), the real Omniglot ImageSet and
the shipped Omniglot critics (each loaded once per session)."""
from __future__ import annotations

import os
from pathlib import Path

# OpenMP threads that spin while waiting make torch 7-100x slower when the 2 cores are shared (measured on this
# machine with several processes running); passive waiting costs nothing on an idle machine. Set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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


@pytest.fixture(scope="session")
def omniglot(data_dir):
    from models.data import load_dataset

    return load_dataset("omniglot", data_dir=data_dir)


@pytest.fixture(scope="session")
def critics():
    from evaluation.critics import load_critics

    return load_critics("omniglot")
