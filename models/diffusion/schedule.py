"""Noise schedule of the latent diffusion model, as pure functions (SPEC section 3).

Notation follows Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models" (NeurIPS 2020):
    beta_t                      noise added at step t            (t = 0 .. T-1, zero-based here)
    alpha_t     = 1 - beta_t
    alpha_bar_t = prod_{s <= t} alpha_s
    q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)                       (Ho eq. 4)
    beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * beta_t, alpha_bar_{-1} = 1 (Ho eq. 7)

The betas are the "scaled-linear" schedule of Rombach et al., "High-Resolution Image Synthesis with Latent
Diffusion Models" (CVPR 2022), which LM uses with T = 1000, beta from 0.0015 to 0.0195:
    beta_t = (sqrt(beta_start) + t / (T - 1) * (sqrt(beta_end) - sqrt(beta_start)))^2

Everything is computed in float64 (the products over 1000 steps lose digits in float32); callers cast once.
"""
from __future__ import annotations

import torch
from torch import Tensor


def scaled_linear_betas(timesteps: int = 1000, beta_start: float = 0.0015, beta_end: float = 0.0195) -> Tensor:
    """(T,) float64 betas, linear in sqrt(beta) (LDM scaled-linear schedule)."""
    if timesteps < 2:
        raise ValueError(f"timesteps must be >= 2, got {timesteps}")
    if not 0.0 < beta_start < beta_end < 1.0:
        raise ValueError(f"need 0 < beta_start < beta_end < 1, got beta_start={beta_start}, beta_end={beta_end}")
    root = torch.linspace(beta_start**0.5, beta_end**0.5, timesteps, dtype=torch.float64)
    return root**2


def alphas_cumprod(betas: Tensor) -> Tensor:
    """(T,) alpha_bar_t = prod_{s <= t} (1 - beta_s)."""
    return torch.cumprod(1.0 - betas, dim=0)


def posterior_variance(betas: Tensor) -> Tensor:
    """(T,) beta_tilde_t, the variance of q(x_{t-1} | x_t, x_0) (Ho eq. 7); 0 at t = 0."""
    abar = alphas_cumprod(betas)
    abar_prev = torch.cat([abar.new_ones(1), abar[:-1]])
    return (1.0 - abar_prev) / (1.0 - abar) * betas


def add_noise(x0: Tensor, noise: Tensor, t: Tensor, abar: Tensor) -> Tensor:
    """Sample x_t ~ q(x_t | x_0) by reparameterization (Ho eq. 4).

    x0, noise: (B, L); t: (B,) int64; abar: (T,) alphas_cumprod in the dtype of x0.
    """
    a = abar[t].unsqueeze(-1)  # (B, 1)
    return a.sqrt() * x0 + (1.0 - a).sqrt() * noise  # (B, L)
