"""Fixtures of the models tests: a small real-drawing set for the autoencoder and regularizer tests."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
import torch
import torch.nn.functional as F


class Drawings(NamedTuple):
    x: torch.Tensor          # (N, 1, 48, 48) float in [0, 1], ink = 1
    labels: torch.Tensor     # (N,) int64 class ids in [0, C)
    exemplars: torch.Tensor  # (C, 1, 48, 48): drawing 0 of each class stands in for the medoid here


@pytest.fixture(scope="session")
def drawings(data_dir) -> Drawings:
    """480 real drawings of the first 48 background characters (10 drawers each), as the models see them."""
    classes, drawers = 48, 10
    with np.load(data_dir / "omniglot" / "images_background.npz") as z:
        paper = z["images"][:classes, :drawers]                       # (C, D, 105, 105) bool, True = paper
    ink = torch.from_numpy(~paper).float().view(-1, 1, 105, 105)      # inverted: ink = 1 (SPEC part 0)
    x = F.interpolate(ink, size=(48, 48), mode="bilinear", antialias=True).clamp(0, 1)
    labels = torch.arange(classes).repeat_interleave(drawers)
    return Drawings(x, labels, x.view(classes, drawers, 1, 48, 48)[:, 0].contiguous())


def random_batch(data: Drawings, size: int, seed: int = 0):
    """A seeded random batch (x, labels, exemplars of those labels)."""
    idx = torch.randperm(len(data.x), generator=torch.Generator().manual_seed(seed))[:size]
    return data.x[idx], data.labels[idx], data.exemplars[data.labels[idx]]


@pytest.fixture(scope="session")
def batch():
    """random_batch(drawings, size, seed=0) -> (x, labels, exemplars of those labels)."""
    return random_batch
