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


@pytest.fixture(scope="module")
def probe():
    spec = importlib.util.spec_from_file_location("probe_cfg_ideal_sampled", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gaussian_classes(g, classes: int, per_class: int, dim: int, between: float, within: float):
    means = torch.randn(classes, dim, generator=g, dtype=torch.float64) * between ** 0.5
    z = means.repeat_interleave(per_class, 0) + torch.randn(classes * per_class, dim, generator=g,
                                                            dtype=torch.float64) * within ** 0.5
    return z, torch.arange(classes).repeat_interleave(per_class), means


def test_mixture_eps_is_the_noised_mixtures_score(probe):
    """eps = -sqrt(1 - abar) * d/dx log p_t(x), p_t the mixture of N(sqrt(abar) mu_k, abar var + 1 - abar): checked
    against autograd of the log-density written out."""
    g = torch.Generator().manual_seed(1)
    means = torch.randn(7, 3, generator=g, dtype=torch.float64) * 2.0
    var = torch.rand(3, generator=g, dtype=torch.float64) * 0.3 + 0.05
    x = torch.randn(5, 3, generator=g, dtype=torch.float64).requires_grad_()
    for abar in (0.9, 0.3, 0.01):
        v = abar * var + 1.0 - abar
        log_p = torch.logsumexp(-0.5 * ((x[:, None, :] - abar ** 0.5 * means) ** 2 / v).sum(-1), dim=1).sum()
        (score,) = torch.autograd.grad(log_p, x)
        expected = -(1.0 - abar) ** 0.5 * score
        assert torch.allclose(probe.mixture_eps(x.detach(), abar, means, var), expected, atol=1e-10)


def test_sampled_ideal_spread_unguided_reproduces_the_data(probe):
    """Unguided, the exact denoiser's samples have the real latents' spread, conditioned on the class (its mean and
    variance) or, one-shot, on one exemplar (the posterior of the class mean widened by its uncertainty: between
    them, the same total variance); guided at w = 1, the samples spread more than the data."""
    g = torch.Generator().manual_seed(2)
    z_tr, y_tr, _ = gaussian_classes(g, 300, 10, 4, between=1.0, within=0.2)
    z_te, y_te, means_te = gaussian_classes(g, 200, 19, 4, between=1.0, within=0.2)
    exemplars = means_te + torch.randn(means_te.shape, generator=g, dtype=torch.float64) * 0.2 ** 0.5
    kwargs = dict(steps=200, per_class=19)
    assert probe.sampled_ideal_spread(z_tr, y_tr, z_te, y_te, 0.0, **kwargs) == pytest.approx(1.0, abs=0.03)
    assert probe.sampled_ideal_spread(z_tr, y_tr, z_te, y_te, 0.0, exemplars=exemplars, **kwargs) == \
        pytest.approx(1.0, abs=0.05)
    assert probe.sampled_ideal_spread(z_tr, y_tr, z_te, y_te, 1.0, **kwargs) > 1.05


def test_figure_is_drawn_from_a_table_and_a_table_without_the_sampled_columns_is_refused(probe, tmp_path):
    import pandas as pd

    table = pd.DataFrame({"run": ["a", "b"], "measured_cfg1": [1.3, 1.4], "mixture_cfg_w1": [1.1, 1.2],
                          "oneshot_cfg_w1": [1.15, 1.25]})
    probe.draw(table, str(tmp_path / "spread.png"))
    assert (tmp_path / "spread.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit, match="oneshot_cfg_w1"):
        probe.draw(table.drop(columns="oneshot_cfg_w1"), str(tmp_path / "no.png"))
    assert not (tmp_path / "no.png").exists()
