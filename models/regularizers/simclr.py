"""SimCLR regularizer: NT-Xent between two views, view 2 from a momentum encoder (SPEC section 2)."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.regularizers.base import PAIRING, Regularizer, Step
from models.regularizers.options import Option


def nt_xent(z1: Tensor, z2: Tensor, tau: float) -> Tensor:
    """SimCLR's NT-Xent (Chen et al. 2020, eq. 1) over the 2B vectors of two (B, D) views: each one's positive is
    its other view, the 2B - 2 others are negatives; averaged over all 2B. The one NT-Xent of the project: the
    SimCLR regularizer and the originality critic (evaluation/critic_training.py) both train with it.

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
    options = {
        "tau": Option(0.5, gt=0, doc="NT-Xent temperature"),
        "momentum": Option(0.99, ge=0, le=1, doc="EMA rate m of the momentum encoder (1: frozen at init)"),
        "pairing": PAIRING,
    }

    def __init__(self, *, encoder: nn.Module, tau: float, momentum: float, pairing: str):
        super().__init__()
        self.tau, self.momentum, self.pairing = tau, momentum, pairing
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
