"""Fixtures of the evaluation tests: the real Omniglot ImageSet and the shipped Omniglot critics, loaded once."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def omniglot(data_dir):
    from models.data import load_dataset

    return load_dataset("omniglot", data_dir=data_dir)


@pytest.fixture(scope="session")
def critics():
    from evaluation.critics import load_critics

    return load_critics("omniglot")
