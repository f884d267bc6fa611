"""The one protocol every latent regularizer implements (SPEC section 2).

Total loss of the RAE: L = L_rec + sum_i w_i * L_i. A regularizer supplies L_i and, where the paper's regularizer
changes the network, the extra parts (heads, projectors, a codebook, a momentum encoder) as its own submodules.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar, Mapping

import torch
from torch import Tensor, nn

from models.regularizers.options import Option

# Constructor arguments the RAE passes to a regularizer that names them in its signature; every other keyword of
# a regularizer's __init__ is a user option, declared in its `options` (models/regularizers/options.py).
MODEL_ARGS = ("latent_size", "feature_size", "n_classes", "encoder")

# The two views of the view-based regularizers (LM's --pairing, SPEC section 2). View 1 is also the
# reconstruction target. LM supports 'prototype' for SimCLR only; here Barlow accepts it too.
PAIRINGS = {
    "augmentation": "view 1 = augmented image, view 2 = another augmentation of the image (LM's default)",
    "prot_aug2": "view 1 = augmented image, view 2 = augmented exemplar",
    "prototype": "view 1 = the image, view 2 = its exemplar, no augmentation",
}


# The `pairing` option of every view-based regularizer (one pairing per model: the views are made once a batch).
PAIRING = Option("augmentation", choices=tuple(PAIRINGS), doc="how the two views are made (PAIRINGS)")


@dataclass(eq=False)
class Step:
    """One training batch as the regularizers see it.

    Latents of the extra inputs (the exemplars, the second view) are computed on first use and cached, so that
    regularizers combined in one model encode each input once and share it.
    """

    x: Tensor                 # (B, 1, H, W) reconstruction target: the image, or its augmented view 1 (SPEC 2)
    z: Tensor                 # (B, L) online latent of x (after KL sampling / VQ), with gradients
    labels: Tensor            # (B,) int64 training-class ids
    exemplars: Tensor         # (B, 1, H, W) the exemplar of each item's class
    view2: Tensor | None      # (B, 1, H, W) second view (PAIRINGS); None unless a regularizer uses views
    encode: Callable[..., Tensor]        # encode(images, encoder=None) -> (B, L); None = the online encoder
    bottleneck_losses: dict[str, Tensor]  # losses returned by Regularizer.bottleneck on x, by name
    _cache: dict[str, Tensor] = field(default_factory=dict)

    def latent_of(self, name: str) -> Tensor:
        """(B, L) online latent, with gradients, of `exemplars` or `view2`; computed once per step."""
        if name not in self._cache:
            images = getattr(self, name)
            if images is None:
                raise ValueError(f"this step has no {name!r}: no registered regularizer asked for views")
            self._cache[name] = self.encode(images)
        return self._cache[name]


class Regularizer(nn.Module):
    """A latent regularizer: one module file, one registry line (models/regularizers/__init__.py).

    Contract:
    - ``__init__`` takes keyword-only arguments. Of ``latent_size``, ``feature_size`` (the flattened conv
      features the encoder's linear head reads), ``n_classes`` and ``encoder`` (the online encoder module, e.g.
      to copy for a momentum encoder) it names only those it needs; the RAE fills them (MODEL_ARGS).
      Every other keyword is a user option, declared in the class attribute ``options`` ({name: Option}, with
      its default, type and valid range; models/regularizers/options.py) and given no default in the signature:
      the RAE passes every declared option, checked, the default where the config sets none. A config sets one
      as ``rae.regularizer_options.<name>.<option>``; a constraint that needs the model arguments (e.g. VQ's
      word size dividing the latent size) is checked in ``__init__`` with a ValueError.
    - ``uses_views``: True if the loss needs two views; such a regularizer has a ``pairing`` attribute (a key of
      PAIRINGS, normally its ``pairing`` option). The RAE builds the views once per batch, feeds view 1 to the
      autoencoder (it becomes the reconstruction target) and exposes view 2 as ``Step.view2``.
    - ``bottleneck(feats, z, generator=)``: regularizers that change the latent itself (KL sampling, VQ
      quantization) override it; the RAE applies every override, in registry order, wherever it encodes
      (training, ``encode()``, exemplars, views). It returns the new latent and the regularizer's loss on it.
    - ``loss(step)``: the unweighted scalar loss L_i of one training step. The default returns the loss the
      bottleneck produced on the step's main batch; other regularizers override it.
    - ``after_step(encoder)``: called after each optimizer step (e.g. the momentum-encoder update), no grad.
    Regularizers hold no state beyond their parameters and buffers, and need no thread or process safety.
    """

    name: ClassVar[str] = ""
    uses_views: ClassVar[bool] = False
    options: ClassVar[Mapping[str, Option]] = {}

    def bottleneck(self, feats: Tensor, z: Tensor, *,
                   generator: torch.Generator | None = None) -> tuple[Tensor, Tensor | None]:
        """(B, F) encoder features and (B, L) latent -> (new latent (B, L), loss or None). Default: unchanged."""
        return z, None

    def loss(self, step: Step) -> Tensor:
        if self.name not in step.bottleneck_losses:
            raise NotImplementedError(f"regularizer {self.name!r} defines neither loss() nor a bottleneck loss")
        return step.bottleneck_losses[self.name]

    @torch.no_grad()
    def after_step(self, encoder: nn.Module) -> None:
        """Hook after optimizer.step(); default: nothing."""
