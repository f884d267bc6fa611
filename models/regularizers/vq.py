"""VQ regularizer: the latent is cut into words quantized against a learned codebook (SPEC section 2, 'VQ')."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.regularizers.base import Regularizer


class VQ(Regularizer):
    """LM's VectorQuantizer1d: L/word_size words, nearest code by L2, straight-through gradient.

    Loss = mse(sg[zq], z) + beta * mse(zq, sg[z]); beta = 2.5 weights the codebook term (taming convention).
    encode() returns quantized latents; the diffusion model works on them.
    """

    name = "vq"

    def __init__(self, *, latent_size: int, n_codes: int = 512, word_size: int = 4, beta: float = 2.5):
        super().__init__()
        if word_size < 1 or latent_size % word_size:
            raise ValueError(f"vq option word_size={word_size} must divide latent_size={latent_size}")
        if n_codes < 2:
            raise ValueError(f"vq option n_codes={n_codes} must be >= 2")
        if not beta >= 0:
            raise ValueError(f"vq option beta={beta} must be >= 0")
        self.word_size, self.beta = word_size, float(beta)
        self.codebook = nn.Parameter(torch.empty(n_codes, word_size).uniform_(-1 / n_codes, 1 / n_codes))

    def indices(self, z: Tensor) -> Tensor:
        """(B, L) -> (B, L / word_size) index of the nearest code of each word."""
        words = z.reshape(-1, self.word_size)                                                # (B*W, d)
        d2 = words.pow(2).sum(1, keepdim=True) - 2 * words @ self.codebook.t() + self.codebook.pow(2).sum(1)
        return d2.argmin(1).view(z.shape[0], -1)

    def bottleneck(self, feats: Tensor, z: Tensor, *,
                   generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        zq = self.codebook[self.indices(z)].view_as(z)                                      # (B, L)
        loss = F.mse_loss(z, zq.detach()) + self.beta * F.mse_loss(zq, z.detach())
        return z + (zq - z).detach(), loss  # straight-through: forward zq, gradient of identity
