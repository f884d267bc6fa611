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


@pytest.fixture()
def one_thread():
    """Tiny models: with 2 threads every small op waits on a thread barrier, which on a busy machine costs far more
    than the op itself (measured: 50 denoiser calls of width 16 took 23 s with 2 threads, 0.4 s with 1)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
