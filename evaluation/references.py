"""Reference sample sets whose place in the originality-recognizability plane theory predicts (issue 11).

A metric is defended by showing where known sample sets land. Each generator here is a pure, seeded function of
the drawings it starts from and returns samples grouped by class, (C, K, 48, 48) float in [0, 1], ready for
`evaluation.evaluate.evaluate_samples`:

| name          | what it is                                              | where it must land                        |
|---------------|---------------------------------------------------------|-------------------------------------------|
| copy          | the exemplar itself, K times                            | originality 0, recognizability ~1         |
| noise         | uniform noise, blind to the class                       | recognizability ~1/20 (chance)            |
| human         | the held-out drawings of the class                      | exactly the human point                   |
| other         | the drawings of another class                           | recognizability far below human           |
| jitter        | the exemplar under a small random affine warp           | originality <= half the human one         |
| blur1, blur2  | human drawings, Gaussian blur sigma 1 / 2 px            | reported                                  |
| stroke+/-1    | human drawings, strokes one pixel wider / narrower      | moves less than blur2                     |
| stroke+/-2    | the same, one pixel on each edge (2 px wider / narrower)| reported                                  |

The image transforms (affine warp with explicit ranges, elastic deformation, stroke dilation/erosion, blur) are
also the SimCLR critic's augmentations (evaluation.critic_training), so a critic is trained to ignore exactly the
changes whose effect these references measure.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from models.augment import affine_map, warp

SIZE = 48


def _float(images: torch.Tensor) -> torch.Tensor:
    """uint8 or float (..., H, W) -> float (B, 1, H, W) in [0, 1], the leading dims flattened."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    return x.reshape(-1, 1, *x.shape[-2:])


def _uniform(n: int, lo: float, hi: float, g: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, generator=g) * (hi - lo) + lo


# ---- image transforms on float (B, 1, H, W) in [0, 1] ----

def random_affine(x: torch.Tensor, *, degrees: float = 10.0, scale: tuple[float, float] = (0.9, 1.1),
                  shear: float = 5.0, shift_px: float = 2.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image under its own affine warp about the centre: rotation in [-degrees, degrees], zoom in scale,
    x-shear in [-shear, shear] degrees, shift in [-shift_px, shift_px] pixels per axis (bilinear, zero fill)."""
    n, side = x.shape[0], x.shape[-1]
    angle = _uniform(n, -degrees, degrees, generator)
    zoom = _uniform(n, *scale, generator)
    sh = _uniform(n, -shear, shear, generator)
    shift = torch.stack([_uniform(n, -shift_px, shift_px, generator),
                         _uniform(n, -shift_px, shift_px, generator)], 1) / side  # fractions of the side
    return warp(x, affine_map(angle, shift, zoom, sh))


def elastic(x: torch.Tensor, *, amplitude_px: float = 1.5, grid: int = 4,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Smooth local deformation: a random displacement (std amplitude_px pixels) drawn on a grid x grid lattice and
    upsampled bicubically, so nearby pixels move together (a hand's wobble, not pixel noise)."""
    n, _, h, w = x.shape
    coarse = torch.randn(n, 2, grid, grid, generator=generator) * amplitude_px  # (n, 2, g, g) in pixels
    disp = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)  # (n, 2, H, W)
    ys = (torch.arange(h, dtype=x.dtype) * 2 + 1) / h - 1
    xs = (torch.arange(w, dtype=x.dtype) * 2 + 1) / w - 1
    base = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)  # (H, W, 2) as (x, y)
    offset = torch.stack([disp[:, 0] * 2 / w, disp[:, 1] * 2 / h], -1)  # pixels -> normalized units
    return F.grid_sample(x, base + offset, mode="bilinear", padding_mode="zeros", align_corners=False)


def _morph_step(x: torch.Tensor, grow: bool, offsets: tuple[tuple[int, int], ...]) -> torch.Tensor:
    """One grey-level dilation (grow) or erosion by the structuring element given as (dy, dx) offsets in {0,1,2}
    of a 3x3 window around each pixel; outside the image is paper (0)."""
    p = F.pad(x if grow else -x, (1, 1, 1, 1), value=0.0 if grow else -1.0)
    h, w = x.shape[-2:]
    nb = torch.stack([p[..., dy : dy + h, dx : dx + w] for dy, dx in offsets]).amax(0)
    return nb if grow else -nb


PLUS = ((1, 1), (0, 1), (2, 1), (1, 0), (1, 2))  # one pixel on every edge: the stroke 2 px wider / narrower
SQUARE2 = ((1, 1), (1, 2), (2, 1), (2, 2))       # one pixel on one side: the stroke 1 px wider / narrower


def stroke_width(x: torch.Tensor, delta: int) -> torch.Tensor:
    """Strokes `delta` pixels wider (delta > 0: grey-level dilation) or narrower (delta < 0: erosion): each pair
    of pixels is one step of the plus-shaped element (one pixel on each edge, so a diagonal step also counts as
    one), an odd remaining pixel one step of the 2x2 element (one pixel on one side; the stroke's centre moves by
    half a pixel, far less than any affine change the critics are trained to ignore)."""
    out = x
    for _ in range(abs(delta) // 2):
        out = _morph_step(out, delta > 0, PLUS)
    if abs(delta) % 2:
        out = _morph_step(out, delta > 0, SQUARE2)
    return out


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur, std sigma pixels, kernel radius ceil(3 sigma), zero (paper) outside."""
    if sigma <= 0:
        return x
    r = math.ceil(3 * sigma)
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=x.dtype) / sigma) ** 2)
    k = k / k.sum()
    x = F.conv2d(F.pad(x, (r, r, 0, 0)), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, r, r)), k.view(1, 1, -1, 1))


def random_stroke_width(x: torch.Tensor, *, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """With probability p per image, strokes one pixel thicker or thinner on each edge (2 px wider or narrower,
    even odds); else unchanged."""
    u = torch.rand(x.shape[0], generator=generator).view(-1, 1, 1, 1)
    thick, thin = stroke_width(x, 2), stroke_width(x, -2)
    return torch.where(u < p / 2, thick, torch.where(u < p, thin, x))


# ---- the reference generators: samples grouped by class, (C, K, 48, 48) float in [0, 1] ----

def grouped(images: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(N, H, W) drawings with labels -> (C, K, H, W) float, K drawings per class (every class must have K)."""
    counts = torch.bincount(labels, minlength=n_classes)
    if int(counts.min()) != int(counts.max()):
        raise ValueError(f"grouping needs the same number of drawings per class, got {int(counts.min())}-"
                         f"{int(counts.max())}")
    order = torch.argsort(labels, stable=True)
    return _float(images[order]).view(n_classes, int(counts[0]), *images.shape[-2:])


def copy(exemplars: torch.Tensor, k: int) -> torch.Tensor:
    return _float(exemplars).view(-1, 1, *exemplars.shape[-2:]).expand(-1, k, -1, -1).clone()


def noise(n_classes: int, k: int, *, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n_classes, k, SIZE, SIZE, generator=g)


def other_class(human: torch.Tensor) -> torch.Tensor:
    """Class c gets the drawings of class c - 1."""
    return torch.roll(human, shifts=1, dims=0)


def jitter(exemplars: torch.Tensor, k: int, *, seed: int = 0) -> torch.Tensor:
    """The exemplar under a random affine warp per sample (rotation <= 10 deg, scale 0.9-1.1, shear <= 5 deg,
    shift <= 2 px): a copy, moved."""
    g = torch.Generator().manual_seed(seed)
    c = copy(exemplars, k)  # (C, K, H, W)
    return random_affine(c.reshape(-1, 1, *c.shape[-2:]), generator=g).view_as(c)


def blur(human: torch.Tensor, sigma: float) -> torch.Tensor:
    return gaussian_blur(human.reshape(-1, 1, *human.shape[-2:]), sigma).view_as(human)


def stroke(human: torch.Tensor, delta: int) -> torch.Tensor:
    return stroke_width(human.reshape(-1, 1, *human.shape[-2:]), delta).view_as(human)


def reference_sets(exemplars: torch.Tensor, human_drawings: torch.Tensor, *, seed: int = 0) -> dict[str, torch.Tensor]:
    """Every reference set for one set of classes: exemplars (C, H, W), human drawings grouped (C, K, H, W)."""
    human = _float(human_drawings).view(human_drawings.shape[0], -1, *human_drawings.shape[-2:])
    c, k = human.shape[:2]
    return {
        "copy": copy(exemplars, k),
        "noise": noise(c, k, seed=seed),
        "human": human,
        "other": other_class(human),
        "jitter": jitter(exemplars, k, seed=seed),
        "blur1": blur(human, 1.0),
        "blur2": blur(human, 2.0),
        "stroke+1": stroke(human, 1),
        "stroke-1": stroke(human, -1),
        "stroke+2": stroke(human, 2),
        "stroke-2": stroke(human, -2),
    }


def score_references(critics, exemplars: torch.Tensor, human_drawings: torch.Tensor, *, seed: int = 0,
                     extra: dict[str, dict] | None = None) -> dict[str, dict]:
    """{name: {'originality', 'recognizability', 'distance_to_human'}} of every reference set, the human point
    being the 'human' set itself (the held-out drawings). extra: already-scored points to place beside them
    (e.g. {'lake2015': point}); their distance is computed to the same human point."""
    from evaluation.evaluate import evaluate_samples
    from evaluation.metrics import distance_to_human

    sets = reference_sets(exemplars, human_drawings, seed=seed)
    human = evaluate_samples(sets["human"], exemplars, critics)
    out = {}
    for name, samples in sets.items():
        r = human if name == "human" else evaluate_samples(samples, exemplars, critics)
        out[name] = {"originality": r["originality"], "recognizability": r["recognizability"]}
    for name, point in (extra or {}).items():
        out[name] = {"originality": point["originality"], "recognizability": point["recognizability"]}
    for p in out.values():
        p["distance_to_human"] = distance_to_human(p["originality"], p["recognizability"],
                                                   human["originality"], human["recognizability"])
    return out
