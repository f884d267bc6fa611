"""Where a run computes: `resolve_device` turns a config's `device` ('auto', 'cpu', 'cuda', 'cuda:N') into a
torch.device, once per run.

'auto' is 'cuda' when torch sees a GPU, else 'cpu'. Under Ray a trial given a (fraction of a) GPU sees exactly
the one Ray assigned it (CUDA_VISIBLE_DEVICES), as cuda:0, so 'auto' and 'cuda' both pick that one. A CUDA
device that is not there is a ConfigError naming the key, not a crash in the middle of training.
"""
from __future__ import annotations

import contextlib
import os

import torch

from models.config import ConfigError, check_device


def resolve_device(name: str = "auto", *, key: str = "device") -> torch.device:
    check_device(key, name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{key}: {name!r} asked for, but torch sees no CUDA GPU (torch {torch.__version__}, "
                              f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}); use auto or cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"{key}: {name!r} asked for, but only {torch.cuda.device_count()} CUDA GPU(s) "
                              "are visible")
    return device


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of a model's parameters (where its callers must put their inputs)."""
    return next(module.parameters()).device


@contextlib.contextmanager
def cpu_threads(limit: int, device: torch.device):
    """At most `limit` torch threads inside the block when computing on the CPU (the setting is restored after).

    For work whose matrices are too small to split: the LDM's training step (batch 128, 64 latent tokens) runs
    1.7x faster on one thread than on two on a 2-core CPU (bench/bench_contention.py, workload ldm).
    """
    before = torch.get_num_threads()
    if device.type == "cpu" and before > limit:
        torch.set_num_threads(limit)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 in hardware (a CUDA GPU that supports it; a CPU with AVX512-BF16 or AMX),
    where rae.precision bf16 pays; elsewhere bfloat16 is emulated and slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        return any(check() for check in checks if check is not None)
    return False
