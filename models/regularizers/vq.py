"""VQ regularizer: the latent is cut into words quantized against a learned codebook (SPEC section 2, 'VQ')."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.regularizers.base import Regularizer
from models.regularizers.options import Option


class VQ(Regularizer):
    """LM's VectorQuantizer1d: L/word_size words, nearest code by L2, straight-through gradient.

    Loss = mse(sg[zq], z) + beta * mse(zq, sg[z]); beta = 2.5 weights the codebook term (taming convention).
    encode() returns quantized latents; the diffusion model works on them.
    """

    name = "vq"
    options = {
        "n_codes": Option(512, ge=2, doc="codebook size"),
        "word_size": Option(4, ge=1, doc="latent dimensions per quantized word (must divide the latent size)"),
        "beta": Option(2.5, ge=0, doc="weight of the codebook term"),
    }

    def __init__(self, *, latent_size: int, n_codes: int, word_size: int, beta: float):
        super().__init__()
        if latent_size % word_size:
            raise ValueError(f"vq option word_size={word_size} must divide latent_size={latent_size}")
        self.word_size, self.beta = word_size, beta
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
