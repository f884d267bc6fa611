"""Ancestral DDPM sampler over all T steps: the paper's default (SPEC section 3 and part 0).

Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models" (NeurIPS 2020), Algorithm 2 with eq. 11:
    x_{t-1} = 1 / sqrt(alpha_t) * (x_t - beta_t / sqrt(1 - alpha_bar_t) * eps_theta(x_t, t)) + sigma_t z
with sigma_t^2 = beta_tilde_t (the posterior variance, LM's v_posterior = 0), z ~ N(0, I), and z = 0 at t = 0.
No clipping of x_0 (LM's latents are unbounded).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .schedule import alphas_cumprod, posterior_variance


class DDPMSampler:
    """Stochastic; consumes one normal draw from `generator` per step except the last."""

    def __init__(self, betas: Tensor, *, steps: int | None = None):
        n = betas.shape[0]
        if steps is not None and steps != n:
            raise ValueError(
                f"sampler 'ddpm' runs all {n} steps, got steps={steps}: use steps=None, or sampler='ddim' for fewer"
            )
        self.timesteps = torch.arange(n - 1, -1, -1)  # (T,) T-1 .. 0
        # per-step scalars as Python floats (from float64): cheap to apply, no device transfers
        abar = alphas_cumprod(betas)
        self._inv_sqrt_alpha = (1.0 - betas).rsqrt().tolist()
        self._eps_coef = (betas / (1.0 - abar).sqrt()).tolist()
        self._sigma = posterior_variance(betas).sqrt().tolist()

    def step(self, x: Tensor, eps: Tensor, index: int, *, generator: torch.Generator | None = None) -> Tensor:
        t = int(self.timesteps[index])
        # 1. posterior mean from the predicted noise (Ho eq. 11)
        mean = (x - self._eps_coef[t] * eps) * self._inv_sqrt_alpha[t]  # (B, L)
        # 2. at t = 0 return the mean (Algorithm 2: z = 0 when t = 1 in the paper's one-based steps)
        if t == 0:
            return mean
        # 3. add noise with sigma_t^2 = beta_tilde_t (Algorithm 2, line 4)
        z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return mean.add_(z, alpha=self._sigma[t])
