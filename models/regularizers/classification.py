"""Classification regularizer: a linear classifier of the training class on the latent (SPEC section 2)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from models.regularizers.base import Regularizer, Step


class Classification(Regularizer):
    """Linear(L -> n_classes) + cross-entropy. LM hard-codes 550 classes; here n_classes comes from the data."""

    name = "classification"

    def __init__(self, *, latent_size: int, n_classes: int):
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"classification needs n_classes >= 2 (the number of training classes), "
                             f"got n_classes={n_classes}")
        self.classifier = nn.Linear(latent_size, n_classes)

    def loss(self, step: Step) -> Tensor:
        return F.cross_entropy(self.classifier(step.z), step.labels)  # (B, C) logits vs (B,) labels
