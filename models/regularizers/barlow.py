"""Barlow Twins regularizer: the cross-correlation of two views' projections driven to identity (SPEC 2)."""
from __future__ import annotations

from torch import Tensor, nn

from models.regularizers.base import PAIRING, Regularizer, Step
from models.regularizers.options import Option


def barlow_twins_loss(a: Tensor, b: Tensor, lam: float) -> Tensor:
    """(B, D) batch-normalized projections -> sum_i (C_ii - 1)^2 + lam * sum_{i != j} C_ij^2, C = a^T b / B."""
    c = a.t() @ b / a.shape[0]       # (D, D)
    diag = c.diagonal()
    return (diag - 1).pow(2).sum() + lam * (c.pow(2).sum() - diag.pow(2).sum())


class Barlow(Regularizer):
    """LM's barlow_loss: projector Linear(L,L)-BN-ReLU-Linear(L,L) (no biases), affine-free BN of each view,
    lambda = 0.005. Both views go through the online encoder with gradients; view 1's latent is the one the
    autoencoder already computed (shared with SimCLR when both are on)."""

    name = "barlow"
    uses_views = True
    options = {
        "lam": Option(0.005, ge=0, doc="weight lambda of the off-diagonal (redundancy) terms"),
        "pairing": PAIRING,
    }

    def __init__(self, *, latent_size: int, lam: float, pairing: str):
        super().__init__()
        self.lam, self.pairing = lam, pairing
        self.projector = nn.Sequential(
            nn.Linear(latent_size, latent_size, bias=False), nn.BatchNorm1d(latent_size),
            nn.ReLU(inplace=True), nn.Linear(latent_size, latent_size, bias=False))
        self.bn = nn.BatchNorm1d(latent_size, affine=False)

    def loss(self, step: Step) -> Tensor:
        a = self.bn(self.projector(step.z))                      # (B, L) view 1
        b = self.bn(self.projector(step.latent_of("view2")))     # (B, L) view 2
        return barlow_twins_loss(a, b, self.lam)
