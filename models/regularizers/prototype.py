"""Prototype regularizer: each latent must pick its own class exemplar among the batch's (SPEC section 2)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.regularizers.base import Regularizer, Step
from models.regularizers.options import Option


def squared_distances(a: Tensor, b: Tensor) -> Tensor:
    """(N, D), (M, D) -> (N, M) squared Euclidean distances, via one matmul."""
    return a.pow(2).sum(1, keepdim=True) - 2 * a @ b.t() + b.pow(2).sum(1)


class Prototype(Regularizer):
    """LM's proto_net_loss: latents of the images and of their exemplars (same online encoder, with gradients)
    go through a projector Linear(L,128)-BN-ReLU-Linear(128,128); logits = -squared L2 (no temperature);
    NLL with targets arange(B).

    LM counts same-class batch items as negatives although they share the exemplar; `mask_same_class=True`
    removes those off-diagonal pairs from the softmax instead (SPEC part 0).
    """

    name = "prototype"
    options = {
        "projection_size": Option(128, ge=1, doc="width of the projector's hidden and output layers"),
        "mask_same_class": Option(False, doc="leave same-class items out of each row's negatives (SPEC part 0)"),
    }

    def __init__(self, *, latent_size: int, projection_size: int, mask_same_class: bool):
        super().__init__()
        self.mask_same_class = mask_same_class
        self.projector = nn.Sequential(
            nn.Linear(latent_size, projection_size, bias=False), nn.BatchNorm1d(projection_size),
            nn.ReLU(inplace=True), nn.Linear(projection_size, projection_size, bias=False))

    def loss(self, step: Step) -> Tensor:
        p = self.projector(step.z)                              # (B, P) images
        q = self.projector(step.latent_of("exemplars"))         # (B, P) their exemplars
        logits = -squared_distances(p, q)                       # (B, B)
        target = torch.arange(p.shape[0], device=p.device)
        if self.mask_same_class:
            same = step.labels.unsqueeze(1) == step.labels.unsqueeze(0)
            logits = logits.masked_fill(same & (target.unsqueeze(1) != target), float("-inf"))
        return F.cross_entropy(logits, target)
