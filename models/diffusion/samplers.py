"""The sampler protocol and registry: one sampler per file (ddpm.py, ddim.py), one line each here.

A sampler knows the timesteps at which the denoiser is called and how to move x from one to the next; the loop
that calls the denoiser lives in LatentDiffusion.sample, so every sampler shares it:

    x = noise
    for i, t in enumerate(sampler.timesteps):
        x = sampler.step(x, eps_theta(x, t), i, generator=generator)
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch
    from torch import Tensor


class Sampler(Protocol):
    """Reverse-process stepper over a fixed noise schedule.

    timesteps: (S,) int64, strictly decreasing, starting at T-1 and ending at 0: where eps is evaluated.
    step(x, eps, index, generator): x at timesteps[index] -> x at timesteps[index + 1] (x_0 after the last).
    Holds only precomputed coefficients, so one instance serves any number of sample() calls.
    """

    timesteps: Tensor

    def step(self, x: Tensor, eps: Tensor, index: int, *, generator: torch.Generator | None = None) -> Tensor: ...


# name -> 'module:Class', imported on first use: config validation and --help read NAMES without torch.
SAMPLERS: dict[str, str] = {
    "ddpm": "models.diffusion.ddpm:DDPMSampler",
    "ddim": "models.diffusion.ddim:DDIMSampler",
}
NAMES: tuple[str, ...] = tuple(SAMPLERS)


def make_sampler(name: str, betas: Tensor, *, steps: int | None = None) -> Sampler:
    """Build sampler `name` for the (T,) float64 betas; `steps` as that sampler accepts (ValueError if not)."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}: expected one of {sorted(SAMPLERS)}")
    module, cls = SAMPLERS[name].split(":")
    return getattr(importlib.import_module(module), cls)(betas, steps=steps)
