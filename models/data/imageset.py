"""ImageSet: one dataset in memory as uint8 tensors (the shared contract of models/data).

Images are (N, 48, 48) uint8 with ink = 255 and paper = 0, i.e. round(255 * v) of the float image v in [0, 1]
that the models see (SPEC part 0: greyscale, ink high, not binarized). `to_float` gives the model's view.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

SIZE = 48  # every image in an ImageSet is SIZE x SIZE (SPEC section 1: the RAE input is 1x48x48)


def to_float(images: Tensor) -> Tensor:
    """uint8 (..., 48, 48) -> float32 (..., 1, 48, 48) in [0, 1] (a channel axis is inserted before H, W)."""
    if images.dtype != torch.uint8:
        raise ValueError(f"to_float expects uint8 images, got {images.dtype}")
    return (images.float() / 255.0).unsqueeze(-3)


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Train and test classes of one dataset. Labels index the class-name tuples and the exemplar tensors."""

    name: str                      # 'omniglot' | 'quickdraw' | 'qdfs'
    train_images: Tensor           # (N_tr, 48, 48) uint8
    train_labels: Tensor           # (N_tr,) int64 in [0, C_tr)
    train_exemplars: Tensor        # (C_tr, 48, 48) uint8
    test_images: Tensor            # (N_te, 48, 48) uint8, the exemplar drawing itself excluded
    test_labels: Tensor            # (N_te,) int64 in [0, C_te)
    test_exemplars: Tensor         # (C_te, 48, 48) uint8
    train_classes: tuple[str, ...]
    test_classes: tuple[str, ...]

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            images, labels, exemplars, classes = self._part(part)
            for key, t, ndim in ((f"{part}_images", images, 3), (f"{part}_exemplars", exemplars, 3)):
                if t.dtype != torch.uint8 or t.ndim != ndim or tuple(t.shape[1:]) != (SIZE, SIZE):
                    raise ValueError(f"ImageSet.{key}: expected uint8 (n, {SIZE}, {SIZE}), "
                                     f"got {t.dtype} {tuple(t.shape)}")
            if labels.dtype != torch.int64 or labels.shape != images.shape[:1]:
                raise ValueError(f"ImageSet.{part}_labels: expected int64 ({len(images)},), "
                                 f"got {labels.dtype} {tuple(labels.shape)}")
            if len(exemplars) != len(classes):
                raise ValueError(f"ImageSet.{part}_exemplars: {len(exemplars)} exemplars for {len(classes)} classes")
            if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
                raise ValueError(f"ImageSet.{part}_labels: values outside [0, {len(classes)})")

    def _part(self, part: str) -> tuple[Tensor, Tensor, Tensor, tuple[str, ...]]:
        return (getattr(self, f"{part}_images"), getattr(self, f"{part}_labels"),
                getattr(self, f"{part}_exemplars"), getattr(self, f"{part}_classes"))

    def fingerprint(self) -> str:
        """sha256 hex over the name, the class names and every tensor's dtype, shape and bytes (content hash).
        Computed once per object (every evaluation of a sweep worker asks; the tensors are never changed in place)."""
        if "_fingerprint" in self.__dict__:
            return self.__dict__["_fingerprint"]
        h = hashlib.sha256()
        for f in fields(self):
            value = getattr(self, f.name)
            h.update(f.name.encode())
            if isinstance(value, Tensor):
                h.update(f"{value.dtype}{tuple(value.shape)}".encode())
                h.update(value.detach().cpu().contiguous().numpy().tobytes())
            elif isinstance(value, tuple):
                h.update("\x1f".join(value).encode() + b"\x1e")  # unit/record separators: names cannot collide
            else:
                h.update(str(value).encode())
        object.__setattr__(self, "_fingerprint", h.hexdigest())  # frozen dataclass: a cache, not a field
        return self.__dict__["_fingerprint"]

    def subset(self, *, train_classes: int | None = None, test_classes: int | None = None,
               seed: int = 0) -> ImageSet:
        """Keep k classes per side: the first k of a permutation of the class ids seeded by `seed`.

        The kept classes stay in their original order and their labels are re-indexed to [0, k). None keeps a
        side whole. Each side draws its own permutation from a generator seeded with `seed`, so the test classes
        chosen do not depend on train_classes. Used by the 'quick' preset.
        """
        changes = {}
        for part, k in (("train", train_classes), ("test", test_classes)):
            if k is not None:
                changes.update(self._subset_part(part, k, seed))
        return replace(self, **changes)

    def _subset_part(self, part: str, k: int, seed: int) -> dict:
        images, labels, exemplars, classes = self._part(part)
        if not 1 <= k <= len(classes):
            raise ValueError(f"subset: {part}_classes={k} outside [1, {len(classes)}]")
        g = torch.Generator().manual_seed(seed)
        keep = torch.randperm(len(classes), generator=g)[:k].sort().values  # (k,) old class ids, ascending
        new_id = torch.full((len(classes),), -1, dtype=torch.int64)
        new_id[keep] = torch.arange(k)
        mask = new_id[labels] >= 0  # (N,) images of kept classes
        return {f"{part}_images": images[mask], f"{part}_labels": new_id[labels[mask]],
                f"{part}_exemplars": exemplars[keep],
                f"{part}_classes": tuple(classes[i] for i in keep.tolist())}
