"""Deterministic DDIM sampler (eta = 0) with a chosen number of steps: our fast option (SPEC part 0).

Song, Meng & Ermon, "Denoising Diffusion Implicit Models" (ICLR 2021), eq. 12 with sigma_t = 0:
    x_prev = sqrt(alpha_bar_prev) * (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)    ("predicted x_0")
           + sqrt(1 - alpha_bar_prev) * eps                                                  ("direction to x_t")
It reuses the DDPM-trained eps_theta unchanged. The S timesteps are evenly spaced from T-1 down to 0
(rounded to integers); after t = 0 the step goes to alpha_bar = 1, i.e. returns the predicted x_0.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .schedule import alphas_cumprod

DEFAULT_STEPS = 50


class DDIMSampler:
    """Deterministic: ignores `generator` (the randomness is all in the initial noise)."""

    def __init__(self, betas: Tensor, *, steps: int | None = None):
        n = betas.shape[0]
        steps = DEFAULT_STEPS if steps is None else steps
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= n:
            raise ValueError(f"sampler 'ddim' needs 1 <= steps <= {n} (the number of timesteps), got steps={steps!r}")
        # evenly spaced, descending; spacing >= 1 keeps rounded values distinct
        self.timesteps = torch.linspace(n - 1, 0, steps, dtype=torch.float64).round().long()  # (S,)
        abar = alphas_cumprod(betas)[self.timesteps]  # (S,) at each visited step
        abar_prev = torch.cat([abar[1:], abar.new_ones(1)])  # (S,) the next visited step; 1 after t = 0
        self._sqrt_abar = abar.sqrt().tolist()
        self._sqrt_one_minus_abar = (1.0 - abar).sqrt().tolist()
        self._sqrt_abar_prev = abar_prev.sqrt().tolist()
        self._sqrt_one_minus_abar_prev = (1.0 - abar_prev).sqrt().tolist()

    def step(self, x: Tensor, eps: Tensor, index: int, *, generator: torch.Generator | None = None) -> Tensor:
        i = index
        # 1. predicted x_0 (Song eq. 12, first term; also Ho eq. 15 solved for x_0)
        x0 = (x - self._sqrt_one_minus_abar[i] * eps) / self._sqrt_abar[i]  # (B, L)
        # 2. eta = 0: no noise term, so x_prev = sqrt(abar_prev) x0 + sqrt(1 - abar_prev) eps (Song eq. 12)
        return x0.mul_(self._sqrt_abar_prev[i]).add_(eps, alpha=self._sqrt_one_minus_abar_prev[i])
