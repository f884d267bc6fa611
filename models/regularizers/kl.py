"""KL regularizer: a variational head and the Gaussian prior N(0, I) (SPEC section 2, 'KL')."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from models.regularizers.base import Regularizer


def kl_to_standard_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """mean_b KL(N(mu, e^logvar) || N(0, I)) = mean_b -1/2 sum_d (1 + logvar - mu^2 - e^logvar)."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()


class KL(Regularizer):
    """The encoder's linear output is the mean; this module adds the log-variance head (LM's q_logvar).

    The latent is the reparameterized sample mu + e^(logvar/2) * eps everywhere: the decoder's input, encode(),
    the exemplar and view latents (LM feeds samples downstream, SPEC section 2).
    """

    name = "kl"

    def __init__(self, *, latent_size: int, feature_size: int):
        super().__init__()
        self.logvar = nn.Linear(feature_size, latent_size)  # encoder features (B, F) -> (B, L)

    def bottleneck(self, feats: Tensor, z: Tensor, *,
                   generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        logvar = self.logvar(feats)                                                     # (B, L)
        device = generator.device if generator is not None else z.device  # draws on the generator's device
        eps = torch.randn(z.shape, generator=generator, device=device).to(z)
        return z + torch.exp(0.5 * logvar) * eps, kl_to_standard_normal(z, logvar)
