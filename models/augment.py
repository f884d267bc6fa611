"""Batched geometric augmentations for the contrastive regularizers (SPEC section 2 and part 0).

LM augments each image in PIL, one by one (`Contrastive_augmentation`): every view of every image picks, uniformly,
one of RandomResizedCrop, RandomAffine and RandomPerspective(p=0.5). Here the same distributions are drawn for the
whole batch at once and every image's warp is written as one 3x3 *sampling map* M that sends an output pixel's
normalized coordinates (u, v, 1) to the input point it reads (homogeneous). All images are then resampled by a single
`F.grid_sample` call (bilinear, zero fill = paper). Deliberate differences from PIL: crop boxes, shifts and corner
offsets are continuous instead of rounded to whole pixels, and the affine warp is bilinear (PIL used nearest).

Coordinates follow `grid_sample(align_corners=False)`: x, y in [-1, 1] span the image edges, 0 is the centre.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class Strength:
    """Ranges of one augmentation strength; the numbers are LM's `Contrastive_augmentation` (SPEC section 2)."""

    scale: tuple[float, float]  # crop area fraction, and affine zoom
    ratio: tuple[float, float]  # crop aspect ratio (w / h)
    degrees: float              # affine rotation in [-degrees, degrees]
    translate: float            # affine shift in [-translate, translate] of the side
    shear: float                # affine x-shear in [-shear, shear] degrees
    distortion: float           # perspective: each corner moves inward by up to distortion * half the side
    perspective_p: float = 0.5  # probability that a chosen perspective warp is applied at all


STRENGTHS: dict[str, Strength] = {
    "light": Strength(scale=(0.9, 1.1), ratio=(0.9, 1.1), degrees=7, translate=0.05, shear=5, distortion=0.25),
    "normal": Strength(scale=(0.75, 1.33), ratio=(0.8, 1.2), degrees=15, translate=0.1, shear=10, distortion=0.5),
    "strong": Strength(scale=(0.5, 1.5), ratio=(0.6, 1.4), degrees=30, translate=0.2, shear=20, distortion=0.5),
}
CROP_TRIES = 10  # torchvision's RandomResizedCrop tries 10 boxes, then falls back to the whole image


def get_strength(name: str) -> Strength:
    if name not in STRENGTHS:
        raise ValueError(f"augmentation strength {name!r} is unknown; expected one of {sorted(STRENGTHS)}")
    return STRENGTHS[name]


def _uniform(n: int | tuple[int, ...], lo: float, hi: float, g: torch.Generator | None) -> Tensor:
    shape = (n,) if isinstance(n, int) else n
    device = g.device if g is not None else "cpu"
    return torch.rand(shape, generator=g, device=device).mul_(hi - lo).add_(lo)


# ---- sampling maps from explicit parameters (pure functions; identity parameters give the identity) ----

def crop_map(box: Tensor) -> Tensor:
    """(n, 4) boxes (x0, y0, w, h) as fractions of the side -> (n, 3, 3) maps that stretch each box to the image."""
    x0, y0, w, h = box.unbind(1)
    m = torch.zeros(box.shape[0], 3, 3, dtype=box.dtype, device=box.device)
    m[:, 0, 0], m[:, 0, 2] = w, 2 * x0 + w - 1  # u = -1..1 reads x = 2 x0 - 1 .. 2 (x0 + w) - 1
    m[:, 1, 1], m[:, 1, 2] = h, 2 * y0 + h - 1
    m[:, 2, 2] = 1
    return m


def affine_map(angle: Tensor, translate: Tensor, scale: Tensor, shear: Tensor) -> Tensor:
    """Rotation (deg, counter-clockwise as torchvision), shift (n, 2) in fractions of the side, zoom and x-shear
    (deg) about the centre -> (n, 3, 3).

    The image is moved by A = T(t) R(angle) Sh(shear) S(scale) (torchvision's composition), with
    R = [[cos, sin], [-sin, cos]] (y points down) and Sh = [[1, -tan], [0, 1]]; the sampling map is
    A^-1 = S^-1 Sh^-1 R^-1 T^-1, written out in closed form.
    """
    a, s = torch.deg2rad(angle), torch.tan(torch.deg2rad(shear))
    cos, sin = torch.cos(a), torch.sin(a)
    # inverse of the linear part: (1/scale) [[1, tan], [0, 1]] @ [[cos, -sin], [sin, cos]]
    inv = torch.stack([cos + s * sin, s * cos - sin, sin, cos], 1).view(-1, 2, 2) / scale.view(-1, 1, 1)
    t = 2 * translate  # fractions of the side -> normalized units
    m = torch.zeros(angle.shape[0], 3, 3, dtype=angle.dtype, device=angle.device)
    m[:, :2, :2] = inv
    m[:, :2, 2] = -(inv @ t.unsqueeze(-1)).squeeze(-1)
    m[:, 2, 2] = 1
    return m


def homography_map(src: Tensor, dst: Tensor) -> Tensor:
    """(n, 4, 2) point pairs -> (n, 3, 3) homographies H with H(src_k) ~ dst_k (h33 = 1), by an 8x8 solve."""
    x, y = src.unbind(-1)  # (n, 4)
    X, Y = dst.unbind(-1)
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    rows_x = torch.stack([x, y, one, zero, zero, zero, -x * X, -y * X], -1)  # (n, 4, 8)
    rows_y = torch.stack([zero, zero, zero, x, y, one, -x * Y, -y * Y], -1)
    a = torch.cat([rows_x, rows_y], 1)  # (n, 8, 8)
    b = torch.cat([X, Y], 1)            # (n, 8)
    h = torch.linalg.solve(a, b)
    return torch.cat([h, torch.ones_like(h[:, :1])], 1).view(-1, 3, 3)


def corners(height: int, width: int) -> Tensor:
    """(4, 2) centres of the corner pixels TL, TR, BR, BL (torchvision's perspective start points), normalized."""
    cx, cy = 1 - 1 / width, 1 - 1 / height
    return torch.tensor([[-cx, -cy], [cx, -cy], [cx, cy], [-cx, cy]])


# ---- random parameters with LM's distributions ----

def random_crop_maps(n: int, st: Strength, g: torch.Generator | None) -> Tensor:
    """RandomResizedCrop: area ~ U(scale), log-ratio ~ U(log ratio); first of 10 boxes that fits, else whole image."""
    area = _uniform((n, CROP_TRIES), *st.scale, g)
    ratio = torch.exp(_uniform((n, CROP_TRIES), math.log(st.ratio[0]), math.log(st.ratio[1]), g))
    w, h = torch.sqrt(area * ratio), torch.sqrt(area / ratio)  # fractions of the side
    fits = (w <= 1) & (h <= 1)
    first = fits.to(torch.uint8).argmax(1, keepdim=True)       # index of the first box that fits
    w = torch.where(fits.any(1), w.gather(1, first).squeeze(1), torch.ones(n, device=w.device))
    h = torch.where(fits.any(1), h.gather(1, first).squeeze(1), torch.ones(n, device=h.device))
    x0, y0 = _uniform(n, 0, 1, g) * (1 - w), _uniform(n, 0, 1, g) * (1 - h)
    return crop_map(torch.stack([x0, y0, w, h], 1))


def random_affine_maps(n: int, st: Strength, g: torch.Generator | None) -> Tensor:
    angle = _uniform(n, -st.degrees, st.degrees, g)
    translate = _uniform((n, 2), -st.translate, st.translate, g)
    scale = _uniform(n, *st.scale, g)
    shear = _uniform(n, -st.shear, st.shear, g)
    return affine_map(angle, translate, scale, shear)


def random_perspective_maps(n: int, st: Strength, height: int, width: int, g: torch.Generator | None) -> Tensor:
    """RandomPerspective: each corner moves inward by U(0, distortion * half side) per axis, with probability p.

    The output shows the input's corner pixels at the moved points, so the sampling map sends moved -> original.
    """
    start = corners(height, width).to(g.device if g is not None else "cpu")  # (4, 2)
    inward = -torch.sign(start)                                              # unit step towards the centre
    shift = _uniform((n, 4, 2), 0, st.distortion, g) * inward                # half side = 1 normalized unit
    shift = shift * (_uniform(n, 0, 1, g) < st.perspective_p).view(n, 1, 1)
    start = start.expand(n, 4, 2)
    return homography_map(start + shift, start)


# ---- applying maps ----

def warp(x: Tensor, maps: Tensor) -> Tensor:
    """Resample (B, C, H, W) images through (B, 3, 3) sampling maps in one grid_sample; outside = 0."""
    b, _, h, w = x.shape
    ys = (torch.arange(h, device=x.device, dtype=x.dtype) * 2 + 1) / h - 1  # pixel centres
    xs = (torch.arange(w, device=x.device, dtype=x.dtype) * 2 + 1) / w - 1
    m = maps.to(x).view(b, 9, 1, 1).unbind(1)  # nine (B, 1, 1) entries
    u, v = xs.view(1, 1, w), ys.view(1, h, 1)
    # Written as (B,1,W) + (B,H,1) outer sums into a preallocated grid: a batched (HW,3) @ (3,3) matmul or a
    # torch.stack of full-size terms is 10-20x slower on CPU at this size.
    den = (m[6] * u + m[8]) + m[7] * v                                     # (B, H, W)
    grid = torch.empty(b, h, w, 2, dtype=x.dtype, device=x.device)
    torch.div((m[0] * u + m[2]) + m[1] * v, den, out=grid[..., 0])
    torch.div((m[3] * u + m[5]) + m[4] * v, den, out=grid[..., 1])
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_maps(n: int, height: int, width: int, *, strength: str = "normal",
                generator: torch.Generator | None = None) -> Tensor:
    """(n, 3, 3) sampling maps: each image picks crop, affine or perspective uniformly (LM's RandomChoice)."""
    st = get_strength(strength)
    kinds = torch.stack([random_crop_maps(n, st, generator),
                         random_affine_maps(n, st, generator),
                         random_perspective_maps(n, st, height, width, generator)])  # (3, n, 3, 3)
    device = generator.device if generator is not None else "cpu"
    choice = torch.randint(0, 3, (n,), generator=generator, device=device)
    return kinds[choice, torch.arange(n, device=device)]


def augment(x: Tensor, *, strength: str = "normal", generator: torch.Generator | None = None) -> Tensor:
    """(B, C, H, W) in [0, 1] -> one independently augmented view of each image, same shape, values in [0, 1]."""
    if x.dim() != 4:
        raise ValueError(f"augment expects images (B, C, H, W), got shape {tuple(x.shape)}")
    maps = random_maps(x.shape[0], x.shape[2], x.shape[3], strength=strength, generator=generator)
    return warp(x, maps)


def two_views(x: Tensor, y: Tensor | None = None, *, strength: str = "normal",
              generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Independent views of x and of y (default: x again, SPEC section 2's 'augmentation' pairing), in one call."""
    v = augment(torch.cat([x, x if y is None else y]), strength=strength, generator=generator)  # (2B, C, H, W)
    return v[: x.shape[0]], v[x.shape[0]:]
