"""bench/probe_cfg_ideal.py's ideal guided spread against the closed form of a one-dimensional Gaussian mixture."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "probe_cfg_ideal.py"


@pytest.fixture(scope="module")
def ideal_spread():
    spec = importlib.util.spec_from_file_location("probe_cfg_ideal", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ideal_spread


def test_ideal_guided_spread_matches_the_closed_form(ideal_spread):
    """Class means drawn with variance B, drawings around them with variance s2: guidance at w draws from a Gaussian
    of precision P = (1 + w) / s2 - w / S2 whose mean moves by a factor a = (1 + w) / (s2 P) away from the overall
    mean, so the spread ratio is sqrt((a^2 B + 1 / P) / S2), S2 = B + s2 (the sample's own moments used)."""
    g = torch.Generator().manual_seed(0)
    classes, per_class = 400, 50
    means = torch.randn(classes, 1, generator=g) * 2.0
    z = means.repeat_interleave(per_class, 0) + torch.randn(classes * per_class, 1, generator=g)
    labels = torch.arange(classes).repeat_interleave(per_class)
    z64 = z.double()
    mu = torch.stack([z64[labels == c].mean(0) for c in range(classes)])
    s2 = float(torch.cat([z64[labels == c] - mu[c] for c in range(classes)]).var())
    S2, B = float(z64.var()), float(mu.var())
    assert ideal_spread(z, labels, 0.0, per_class=per_class) == pytest.approx(1.0, abs=0.02)
    for w in (1.0, 2.0):
        P = (1 + w) / s2 - w / S2
        a = (1 + w) / (s2 * P)
        expected = math.sqrt((a * a * B + 1 / P) / S2)
        assert expected > 1.03  # guidance pushes the means out: more spread than the data
        assert ideal_spread(z, labels, w, per_class=per_class) == pytest.approx(expected, rel=0.02)
