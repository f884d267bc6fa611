"""Fixtures of the evaluation tests (the Omniglot ImageSet and the shipped critics are in tests/conftest.py)."""
from __future__ import annotations

import pytest


@pytest.fixture()
def one_thread():
    """Tiny models: with 2 threads every small op waits on a thread barrier, which on a busy machine costs far more
    than the op itself (measured: 50 denoiser calls of width 16 took 23 s with 2 threads, 0.4 s with 1)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
