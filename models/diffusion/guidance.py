"""How the conditional and unconditional predictions are combined at each sampling step (the guidance rule).

- 'cfg' (the paper's; Ho & Salimans 2021, eq. 6): (1 + w) out_c - w out_u, on whatever the denoiser predicts.
- 'projected' (ours, after Sadat et al. 2024, "Eliminating oversaturation and artifacts of high guidance scales",
  APG with eta = 0, no momentum and no norm cap): the guidance step w (x0_c - x0_u), taken on the x0-predictions,
  keeps only its part orthogonal to the conditional x0-prediction x0_c. CFG's step along x0_c scales each guided
  x0-prediction up, which is why guided latents come out 1.3-1.9x as spread as real ones (docs/recipe.md); the
  orthogonal part is what moves a sample towards its exemplar's class. Per sample, over the latent dimensions.

Both are exact at w = 0 (the conditional model). Adding a rule: one function here and its name in RULES.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch-free at import: models.config reads RULES
    from torch import Tensor

RULES = ("cfg", "projected")


def guide(out_c: Tensor, out_u: Tensor, w: float, rule: str, *, x: Tensor, abar: Tensor, prediction: str) -> Tensor:
    """The guided output (in the denoiser's output space) from the conditional and unconditional outputs (B, L).

    x: the noisy latents x_t (B, L); abar: alpha_bar at t, (1|B, 1); prediction: 'eps' or 'v' (what out_* mean)."""
    import torch

    if rule == "cfg":
        return torch.lerp(out_u, out_c, 1.0 + w)  # out_u + (1 + w)(out_c - out_u)
    if rule == "projected":
        x0_c, x0_u = to_x0(out_c, x, abar, prediction), to_x0(out_u, x, abar, prediction)
        step = x0_c - x0_u
        unit = x0_c / x0_c.norm(dim=1, keepdim=True).clamp_min(1e-12)
        step = step - (step * unit).sum(dim=1, keepdim=True) * unit  # the part orthogonal to x0_c
        return from_x0(x0_c + w * step, x, abar, prediction)
    raise ValueError(f"guidance rule must be one of {RULES}, got {rule!r}")


def to_x0(out: Tensor, x: Tensor, abar: Tensor, prediction: str) -> Tensor:
    """x0 = sqrt(abar) x - sqrt(1 - abar) v, or (x - sqrt(1 - abar) eps) / sqrt(abar) (Salimans & Ho 2022, app. D)."""
    if prediction == "v":
        return abar.sqrt() * x - (1.0 - abar).sqrt() * out
    return (x - (1.0 - abar).sqrt() * out) / abar.sqrt()


def from_x0(x0: Tensor, x: Tensor, abar: Tensor, prediction: str) -> Tensor:
    """The inverse of to_x0 for the same x and abar."""
    if prediction == "v":
        return (abar.sqrt() * x - x0) / (1.0 - abar).sqrt()
    return (x - abar.sqrt() * x0) / (1.0 - abar).sqrt()
