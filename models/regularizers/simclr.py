"""SimCLR regularizer: NT-Xent between two views, view 2 from a momentum encoder (SPEC section 2)."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.regularizers.base import Regularizer, Step, check_pairing


def nt_xent(z1: Tensor, z2: Tensor, tau: float) -> Tensor:
    """NT-Xent over the 2B latents: each one's positive is its other view, the 2B - 2 others are negatives.

    A matmul of L2-normalized vectors; LM's broadcast F.cosine_similarity on (2B, 2B, L) gives the same number
    about 200x slower on CPU (notes/reference_speed.md).
    """
    b = z1.shape[0]
    r = F.normalize(torch.cat([z1, z2]), dim=1)                                # (2B, L)
    sim = (r @ r.t()) / tau                                                    # (2B, 2B)
    eye = torch.eye(2 * b, dtype=torch.bool, device=r.device)
    sim = sim.masked_fill(eye, float("-inf"))                                  # no self-pairs
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(b)]).to(r.device)
    return F.cross_entropy(sim, target)


class SimCLR(Regularizer):
    """NT-Xent (tau 0.5) on L2-normalized latents, no projector. View 1 is the online latent of the reconstruction
    target; view 2 goes through a momentum copy of the encoder (EMA m = 0.99, no gradient; MoCo-like), then
    through the same latent bottleneck as the online path (KL sample / VQ), as LM reparameterizes its target.
    """

    name = "simclr"
    uses_views = True

    def __init__(self, *, encoder: nn.Module, tau: float = 0.5, momentum: float = 0.99,
                 pairing: str = "augmentation"):
        super().__init__()
        if not tau > 0:
            raise ValueError(f"simclr option tau={tau} must be > 0")
        if not 0 <= momentum <= 1:
            raise ValueError(f"simclr option momentum={momentum} must be in [0, 1]")
        self.tau, self.momentum = float(tau), float(momentum)
        self.pairing = check_pairing("simclr", pairing)
        self.target = copy.deepcopy(encoder).requires_grad_(False)

    def loss(self, step: Step) -> Tensor:
        with torch.no_grad():
            z2 = step.encode(step.view2, encoder=self.target)  # (B, L)
        return nt_xent(step.z, z2, self.tau)

    @torch.no_grad()
    def after_step(self, encoder: nn.Module) -> None:
        # theta_target <- m theta_target + (1 - m) theta_online; BN running stats stay the target's own (MoCo)
        for t, o in zip(self.target.parameters(), encoder.parameters()):
            t.lerp_(o, 1 - self.momentum)
