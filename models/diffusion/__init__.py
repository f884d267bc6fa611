"""Exemplar-conditioned latent diffusion (SPEC section 3): LatentDiffusion, its denoiser, schedule and samplers.

LatentDiffusion is imported lazily so that `import models.diffusion` stays light (torch loads on first use).
"""
from __future__ import annotations

__all__ = ["LatentDiffusion"]


def __getattr__(name: str):
    if name == "LatentDiffusion":
        from .model import LatentDiffusion

        return LatentDiffusion
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
