"""Feature importance maps (SPEC section 7): record steps, the JVP against the full Jacobian, Spearman."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluation.maps import feature_importance_maps, record_timesteps, save_heatmaps, spearman_compare


def test_record_timesteps_follow_lm_spacing_in_timestep_units():
    t = record_timesteps(1000)
    assert t.numel() == 100 and bool((t[:-1] > t[1:]).all())  # distinct, descending (sampling order)
    k = 999 - t  # LM's record index
    assert int(k.min()) == 100 and int(k.max()) == 999
    assert int(((k >= 801)).sum()) == 50 and int(((k >= 510) & (k <= 800)).sum()) == 30
    assert record_timesteps(1000, 10).numel() == 10


def _models(latent: int = 8):
    from models.diffusion.model import LatentDiffusion
    from models.rae import RegularizedAE

    torch.manual_seed(0)
    ae = RegularizedAE(latent_size=latent, width=16).eval()
    ldm = LatentDiffusion(latent_size=latent, timesteps=20, width=16).eval()
    ldm.set_latent_stats(torch.randn(64, latent) * 2.0 + 0.5)
    return ae, ldm


def test_jvp_equals_full_jacobian_times_score(one_thread):
    from torch.func import jvp

    ae, ldm = _models()
    x, s = torch.randn(1, 8), torch.randn(1, 8)

    def decode(z):
        return ae.decode(ldm.unstandardize(z))[:, 0]

    _, js = jvp(decode, (x,), (s,))
    # the full Jacobian by reverse mode (one vmapped backward), independent of the forward-mode jvp
    jac = torch.autograd.functional.jacobian(lambda z: decode(z.view(1, 8)).reshape(-1), x[0],
                                             vectorize=True)  # (2304, 8)
    torch.testing.assert_close(js.reshape(-1), jac @ s[0], rtol=1e-4, atol=1e-6)


def test_maps_shape_sign_and_determinism(omniglot, one_thread):
    ae, ldm = _models()
    ex = omniglot.test_exemplars[:2]
    a = feature_importance_maps(ae, ldm, ex, samples=3, records=10, seed=1)
    b = feature_importance_maps(ae, ldm, ex, samples=3, records=10, seed=1)
    assert a["maps"].shape == a["images"].shape == (2, 3, 48, 48)
    assert 0 < len(a["timesteps"]) <= 10 and a["timesteps"].max() < 20  # T = 20: close records merge
    assert (a["maps"] >= 0).all() and a["maps"].sum() > 0
    np.testing.assert_array_equal(a["maps"], b["maps"])
    c = feature_importance_maps(ae, ldm, ex, samples=3, records=10, seed=2)
    assert not np.array_equal(a["maps"], c["maps"])


def test_spearman_compare_golden(tmp_path):
    rng = np.random.default_rng(0)
    m = rng.random((3, 2, 48, 48))
    one = m[:, :1]  # with one sample per class the sample mean is the map itself
    same = spearman_compare(one, one ** 3)  # a monotone transform keeps every rank
    assert same["mean"] == pytest.approx(1.0)
    flipped = spearman_compare(m, -m)
    assert flipped["mean"] == pytest.approx(-1.0)
    assert abs(spearman_compare(m, rng.random((3, 2, 48, 48)))["mean"]) < 0.1
    with pytest.raises(ValueError, match="same classes"):
        spearman_compare(m, m[:2])
    flat = m.copy()
    flat[1] = 0.0  # a decoder that ignores its latent gives all-zero maps: no ranks to compare
    with pytest.raises(ValueError, match=r"class\(es\) \[1\] are constant"):
        spearman_compare(flat, m)
    png = save_heatmaps((rng.random((3, 48, 48)) * 255).astype(np.uint8), m, tmp_path / "maps.png")
    assert png.stat().st_size > 5000
