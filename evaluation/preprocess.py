"""The one preprocessing every image takes before a critic sees it (SPEC part 0, Evaluation).

Exemplars, generated samples and human drawings all go through `preprocess`: resize to the critic's input size,
per-image min-max, binarize at a threshold (0.3 as LM 2024; the 2022 framework used 0.5). The threshold and the
size are properties of the critics (their manifest), so every result records them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

DEFAULT_THRESHOLD = 0.3


def as_float_images(images: torch.Tensor) -> torch.Tensor:
    """Any batch of single-channel images -> float32 (B, 1, H, W).

    uint8 inputs are divided by 255; float inputs are taken as they are (min-max follows anyway). Accepted
    shapes: (H, W), (B, H, W), (B, 1, H, W), and any leading dims before (H, W) which are flattened.
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor of images, got {type(images).__name__}")
    if images.dim() < 2:
        raise ValueError(f"images must have at least 2 dims (H, W), got shape {tuple(images.shape)}")
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    if x.dim() >= 3 and x.shape[-3] == 1:  # drop an explicit channel axis before flattening
        x = x.squeeze(-3)
    return x.reshape(-1, 1, *x.shape[-2:])  # (B, 1, H, W)


def preprocess(images: torch.Tensor, *, size: int, threshold: float = DEFAULT_THRESHOLD) -> torch.Tensor:
    """Resize -> per-image min-max -> binarize (> threshold). Returns float32 (B, 1, size, size) in {0, 1}.

    A blank image (max == min) becomes all zeros rather than NaN.
    """
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"binarize threshold must be in [0, 1), got {threshold}")
    x = as_float_images(images)  # (B, 1, H, W)
    if x.shape[-1] != size or x.shape[-2] != size:
        # antialiased bilinear, the same resampling the data loaders use for 105 -> 48 (SPEC part 0, Data)
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    lo = x.amin(dim=(-2, -1), keepdim=True)  # (B, 1, 1, 1)
    hi = x.amax(dim=(-2, -1), keepdim=True)
    span = hi - lo
    x = torch.where(span > 0, (x - lo) / span.clamp_min(1e-12), torch.zeros_like(x))
    return (x > threshold).float()
