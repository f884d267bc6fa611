"""evaluation/ink.py: the grey share of the ink, which the critics (binarizing every image) do not see."""
import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from evaluation.ink import faint, ink_stats


def test_grey_share_tells_crisp_strokes_from_blurred_ones(omniglot):
    drawings = omniglot.test_images[:300].numpy()  # uint8, ink = 255
    crisp = np.where(drawings > 127, 255, 0).astype(np.uint8)
    blurred = np.stack([gaussian_filter(d.astype(np.float32), 1.5) for d in drawings]).round().astype(np.uint8)
    people, sharp, ghost = (ink_stats(a) for a in (drawings, crisp, blurred))
    assert sharp["grey_share"] == 0.0 and sharp["coverage"] > 0.05
    assert people["grey_share"] > 0.2  # antialiased 48 px strokes: some of people's ink is grey too
    assert ghost["grey_share"] > people["grey_share"] + 0.3 and ghost["coverage"] > people["coverage"]
    assert faint(ghost["grey_share"], people["grey_share"]) and not faint(people["grey_share"], people["grey_share"])
    assert not faint(sharp["grey_share"], people["grey_share"])


def test_a_sample_set_scores_the_same_as_floats_and_as_the_stored_uint8():
    """run_eval measures the float samples, bench/bench_ink.py and rescore the uint8 npz they are stored as."""
    x = torch.rand(2, 3, 48, 48) ** 3
    stored = (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()  # what run_eval writes
    assert ink_stats(x) == ink_stats(stored)
    assert ink_stats(np.zeros((4, 48, 48))) == {"grey_share": 0.0, "coverage": 0.0}  # nothing drawn: no error


def test_faint_is_relative_to_peoples_solid_ink():
    """Flagged when the solid share (1 - grey) falls under a quarter of people's: QuickDraw's measured sets."""
    people = 0.742
    assert not faint(0.906, people)  # prototype 100's stroke drawings (solid 0.094 = 0.36 of people's)
    assert faint(0.983, people) and faint(0.975, people)  # classification 1000's ghosts, Barlow 100
    assert not faint(0.6, 0.373) and faint(0.9, 0.373)  # Omniglot's people: 0.373
