"""Distance to the human point in the originality-recognizability plane (SPEC part 0): the one implementation.

Numpy only (no torch), so that the sweep driver, the replay benchmark and the reports use it without loading the
critics' stack. `evaluation.metrics` re-exports `distance_to_human` beside the other metrics.
"""
from __future__ import annotations

import numpy as np

NORMALIZATIONS = ("relative", "absolute")


def axis_deviations(originality_value, recognizability_value, human_originality, human_recognizability, *,
                    normalization: str = "relative"):
    """(do, dr): the signed offsets from the human point on each axis.

    'relative' (the default and the searched objective): each axis divided by the human value,
    do = (o - o_h) / o_h and dr = (r - r_h) / r_h, so 0.05 is about 5% off; 'absolute': raw units. The Pareto
    objective minimizes (|do|, |dr|). Floats in, floats out; numpy arrays in, arrays out.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {normalization!r}; expected one of {', '.join(NORMALIZATIONS)}")
    do = np.subtract(originality_value, human_originality)
    dr = np.subtract(recognizability_value, human_recognizability)
    if normalization == "relative":
        if not (human_originality > 0 and human_recognizability > 0):
            raise ValueError("relative distance needs a human point with positive originality and recognizability")
        do, dr = do / human_originality, dr / human_recognizability
    if np.ndim(do) == 0:
        return float(do), float(dr)
    return do, dr


def distance_to_human(originality_value, recognizability_value, human_originality, human_recognizability, *,
                      normalization: str = "relative"):
    """Euclidean distance to the human point, d = sqrt(do^2 + dr^2) with (do, dr) = `axis_deviations`.

    Works on floats and numpy arrays alike.
    """
    do, dr = axis_deviations(originality_value, recognizability_value, human_originality, human_recognizability,
                             normalization=normalization)
    d = np.sqrt(np.square(do) + np.square(dr))
    return float(d) if np.ndim(d) == 0 else d
