"""Class exemplars and the train/test assembly shared by the loaders (SPEC part 0: exemplar = medoid).

The medoid of a class is the drawing with the smallest summed Euclidean distance to the other drawings of its
class, measured on the stored 48x48 images as floats v = u / 255 (u the uint8 value). Ties go to the lowest index.
It is computed exactly: squared distances between uint8 images are integers below 2^28, which float64 Gram
matrices represent without rounding, so the choice does not depend on BLAS summation order or the machine.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .imageset import ImageSet

BATCH_CLASSES = 64  # classes per batched Gram product: 64 x 100 x 2304 float64 = 118 MB


def medoids_same_size(classes: Tensor) -> Tensor:
    """uint8 (C, K, H, W) -> (C,) int64 index in [0, K) of each class's medoid."""
    out = []
    for start in range(0, len(classes), BATCH_CLASSES):
        x = classes[start:start + BATCH_CLASSES].flatten(2).double()      # (c, K, D) integer-valued
        gram = x @ x.transpose(1, 2)                                       # (c, K, K) exact integers
        sq = gram.diagonal(dim1=1, dim2=2)                                 # (c, K)
        d2 = (sq.unsqueeze(2) + sq.unsqueeze(1) - 2.0 * gram).clamp_min(0)  # (c, K, K) exact
        total = d2.sqrt().sum(dim=2) / 255.0                               # (c, K) summed distance on [0,1] floats
        out.append(total.argmin(dim=1))                                    # first minimum = lowest index on ties
    return torch.cat(out) if out else torch.empty(0, dtype=torch.int64)


def medoid_positions(images: Tensor, labels: Tensor, n_classes: int) -> Tensor:
    """Medoid of every class as a position in `images`.

    images: uint8 (N, H, W) grouped by class (labels non-decreasing); labels: (N,) int64 in [0, n_classes),
    every class non-empty. Returns (n_classes,) int64 indices into images. Classes with the same number of
    drawings are batched together (one gather, one batched Gram product).
    """
    counts = torch.bincount(labels, minlength=n_classes)                  # (C,)
    if (counts == 0).any() or (labels[1:] < labels[:-1]).any():
        raise ValueError("medoid_positions: images must be grouped by class and every class non-empty")
    starts = torch.cumsum(counts, 0) - counts                             # (C,) first position of each class
    result = torch.empty(n_classes, dtype=torch.int64)
    for k in counts.unique().tolist():
        ids = (counts == k).nonzero().squeeze(1)                          # (c,) classes with k drawings
        where = starts[ids].unsqueeze(1) + torch.arange(k)                # (c, k) positions
        result[ids] = starts[ids] + medoids_same_size(images[where])
    return result


def assemble(name: str, images: Tensor, labels: Tensor, names: Sequence[str], is_test: Sequence[bool], *,
             exemplars: Tensor | None = None) -> ImageSet:
    """Split every class's drawings into an ImageSet.

    images: uint8 (N, 48, 48) grouped by class; labels: (N,) int64 class ids in [0, C), non-decreasing;
    names: C class names; is_test: C flags. exemplars: uint8 (C, 48, 48) given by the dataset (QuickDraw-FS
    prototypes), or None for the medoid. A medoid is one of the drawings, so it is removed from a test class's
    drawings (they are the human samples); given exemplars are separate images and every drawing is kept.
    Training classes keep all their drawings. Each side's labels are re-numbered in class order.
    """
    test = torch.as_tensor(list(is_test), dtype=torch.bool)               # (C,)
    keep = torch.ones(len(images), dtype=torch.bool)                      # (N,)
    if exemplars is None:
        picks = medoid_positions(images, labels, len(names))              # (C,)
        exemplars = images[picks]
        keep[picks[test]] = False                                         # the test exemplar is not a sample
    side_id = torch.empty(len(names), dtype=torch.int64)                  # class id within its side
    side_id[test] = torch.arange(int(test.sum()))
    side_id[~test] = torch.arange(int((~test).sum()))
    parts = {}
    for part, flag in (("train", False), ("test", True)):
        in_part = test == flag                                            # (C,)
        if not in_part.any():
            raise ValueError(f"{name}: no {part} classes")
        mask = in_part[labels] & keep                                     # (N,)
        parts.update({f"{part}_images": images[mask], f"{part}_labels": side_id[labels[mask]],
                      f"{part}_exemplars": exemplars[in_part],
                      f"{part}_classes": tuple(n for n, t in zip(names, is_test) if bool(t) == flag)})
    return ImageSet(name=name, **parts)
