"""The parametric fit of SPEC section 6: exact on a line, decreasing residual, pinned points, bad input."""
from __future__ import annotations

import numpy as np
import pytest

from evaluation.fit import centripetal_parameters, parametric_fit


def test_centripetal_parameters_golden():
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 4.0]])  # steps of length 1 and 4 -> sqrt: 1 and 2
    np.testing.assert_allclose(centripetal_parameters(pts), [0.0, 1 / 3, 1.0])


def test_fit_is_exact_on_evenly_spaced_line():
    t = np.linspace(0, 1, 6)
    pts = np.stack([2 * t, 1 - t, 0.5 + 3 * t], axis=1)
    fit = parametric_fit(pts)
    assert fit.residual < 1e-9
    np.testing.assert_allclose(fit(fit.u), pts, atol=1e-9)
    np.testing.assert_allclose(fit.curve(3)[[0, -1]], pts[[0, -1]], atol=1e-9)


def test_fit_residual_falls_with_iterations_on_a_cubic():
    t = np.array([0, 0.05, 0.2, 0.3, 0.55, 0.7, 0.9, 1.0])
    pts = np.stack([t, 1 + 2 * t - 3 * t**2 + t**3, 0.5 - t**2 + 0.7 * t**3], axis=1)
    res = [parametric_fit(pts, max_iter=m, tol=0).residual for m in (1, 5, 20, 100)]
    assert all(a > b for a, b in zip(res, res[1:]))
    fit = parametric_fit(pts, max_iter=100, tol=0)
    assert np.all(np.diff(fit.u) >= 0) and fit.u[0] == 0 and fit.u[-1] == 1


def test_weights_pin_a_point():
    rng = np.random.default_rng(0)
    pts = np.cumsum(rng.normal(size=(7, 2)), axis=0)
    free = parametric_fit(pts, degree=2)
    w = np.ones(7)
    w[3] = 1e5
    pinned = parametric_fit(pts, degree=2, weights=w)
    err = lambda f: np.linalg.norm(f(f.u)[3] - pts[3])  # noqa: E731
    assert err(pinned) < 1e-3 < err(free)


def test_fit_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 2 points"):
        parametric_fit(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="NaN"):
        parametric_fit(np.array([[0.0, 1.0], [np.nan, 2.0]]))
    with pytest.raises(ValueError, match="weights"):
        parametric_fit(np.zeros((3, 2)), weights=[1, 1])
