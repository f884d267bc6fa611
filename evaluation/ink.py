"""How faint a set of drawings is: what the critics cannot see.

Every image the critics score is min-max scaled and binarized at 0.3 (SPEC part 0), so a grey ghost of the right
shape and a crisp stroke drawing of the same shape reach them as the same black-and-white picture: the distance
to people is blind to contrast (docs/critics.md). This is the number that shows it, recorded beside every
evaluation's point (rows: `ink_grey_share`, `ink_grey_share_human`, and `ink_grey_share_ae` for the autoencoder's
reconstructions of people's drawings, evaluation/ceilings.py):

- `grey_share`: of the ink pixels (above INK of 255), the fraction that are mid-grey (below SOLID). People's
  drawings at 48 px are antialiased strokes, so some of their ink is grey too (Omniglot's held-out drawings 0.37,
  the QuickDraw set's 0.74); samples whose ink is nearly all grey (0.98 and more) are the faint ghosts a person
  rejects at a glance;
- `coverage`: ink pixels per pixel (how much of the picture is drawn at all).

`faint(grey, grey_human)` says when a sample set's grey share is far enough above people's to flag it in `sweep
status`/`best`: its solid share (1 - grey) under a quarter of people's. Measured on QuickDraw (bench/bench_ink.py):
prototype 100's stroke drawings 0.906 (solid 0.094 = 0.36 of people's 0.258, not flagged), classification 1000's
grey ghosts 0.983 (0.07 of people's, flagged). On Omniglot (results/standard_ink, people 0.373) the grid's best
weights draw 0.51-0.59 (not flagged) and VQ 1's hazy samples 0.86 (flagged).
"""
from __future__ import annotations

import numpy as np

INK = 64  # of 255: a pixel darker than this is ink
SOLID = 192  # of 255: an ink pixel at least this dark is solid, below it mid-grey
FAINT_SOLID_RATIO = 0.25  # flagged: solid share of the ink under this fraction of people's


def ink_stats(images) -> dict[str, float]:
    """{'grey_share', 'coverage'} of images with ink = 1 (float in [0, 1]) or ink = 255 (uint8), any shape."""
    a = np.asarray(images)
    if a.dtype != np.uint8:  # onto the uint8 grid the samples are stored on, so both score the same
        a = np.round(np.clip(a.astype(np.float64), 0.0, 1.0) * 255.0)
    ink = a > INK
    grey = ink & (a < SOLID)
    return {"grey_share": float(grey.sum() / max(int(ink.sum()), 1)), "coverage": float(ink.mean())}


def faint(grey_share: float, grey_share_human: float) -> bool:
    """True when the solid share of a set's ink is under FAINT_SOLID_RATIO of people's (module docstring)."""
    return (1.0 - grey_share) < FAINT_SOLID_RATIO * (1.0 - grey_share_human)


def describe(grey_share: float, grey_share_human: float, grey_share_ae: float | None = None) -> str:
    """One line for `humanlike evaluate`, `sweep status` and `best`: the grey share beside people's (and beside the
    autoencoder's reconstructions of people's drawings, when known), and a warning when the samples are faint."""
    ae = "" if grey_share_ae is None else f", through the autoencoder {grey_share_ae:.0%}"
    text = f"ink: {grey_share:.0%} of the samples' ink is mid-grey (people's drawings {grey_share_human:.0%}{ae})"
    if faint(grey_share, grey_share_human):
        text += ("; FAINT: the critics binarize every image and score these grey samples like crisp ones, "
                 "look at samples.png before trusting the distance")
    return text
