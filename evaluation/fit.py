"""LM's parametric fit (SPEC section 6): a polynomial curve u in [0, 1] -> R^d through ordered points.

Used by Figure 3 to draw, for each regularizer, a smooth path through its runs ordered by weight, in the space
(log10 weight, originality, recognizability). Written from the SPEC description: centripetal initialization, then
alternate a weighted least-squares polynomial fit per coordinate with a golden-section re-placement of each
interior u_i inside [u_{i-1}, u_{i+1}], until the weighted residual stops decreasing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.polynomial import polynomial as P

_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0  # 0.618...


@dataclass(frozen=True)
class ParametricFit:
    u: np.ndarray        # (n,) parameter of each input point, 0 = first, 1 = last, non-decreasing
    coefs: np.ndarray    # (degree + 1, d) power-basis coefficients, lowest degree first
    residual: float      # sum_i w_i * ||P_i - f(u_i)||
    iterations: int

    def __call__(self, u) -> np.ndarray:
        """Points on the curve at parameters u (array-like) -> (len(u), d)."""
        return P.polyval(np.asarray(u, dtype=np.float64), self.coefs).T.reshape(-1, self.coefs.shape[1])

    def curve(self, n: int = 200) -> np.ndarray:
        return self(np.linspace(0.0, 1.0, n))


def centripetal_parameters(points: np.ndarray) -> np.ndarray:
    """u_i proportional to the cumulative sum of ||P_{i+1} - P_i||^0.5, scaled to [0, 1]."""
    steps = np.sqrt(np.linalg.norm(np.diff(points, axis=0), axis=1))  # (n-1,)
    u = np.concatenate([[0.0], np.cumsum(steps)])
    return u / u[-1] if u[-1] > 0 else np.linspace(0.0, 1.0, len(points))


def _polyfit(u: np.ndarray, points: np.ndarray, degree: int, weights: np.ndarray) -> np.ndarray:
    # numpy's w multiplies the residual, so sqrt(weights) weights the squared error by `weights`
    return P.polyfit(u, points, degree, w=np.sqrt(weights))  # (degree + 1, d)


def _golden_replace(u: np.ndarray, points: np.ndarray, coefs: np.ndarray, idx: np.ndarray, iters: int = 40):
    """Move each u[idx] to the minimizer of ||P_i - f(u)|| on [u[i-1], u[i+1]] (vectorized golden section)."""
    lo, hi = u[idx - 1].copy(), u[idx + 1].copy()  # (m,)
    target = points[idx]  # (m, d)

    def cost(x):
        return np.linalg.norm(P.polyval(x, coefs).T - target, axis=1)  # (m,)

    a, b = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
    fa, fb = cost(a), cost(b)
    for _ in range(iters):
        left = fa < fb  # minimum in [lo, b]
        hi = np.where(left, b, hi)
        lo = np.where(left, lo, a)
        a_new, b_new = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
        a, b = a_new, b_new
        fa, fb = cost(a), cost(b)
    best = 0.5 * (lo + hi)
    keep = cost(u[idx]) <= cost(best)  # never make a point worse than where it was
    u[idx] = np.where(keep, u[idx], best)


def parametric_fit(points, *, degree: int = 3, max_iter: int = 20, tol: float = 1e-5,
                   weights=None) -> ParametricFit:
    """Fit a degree-`degree` polynomial curve through `points` (n, d), taken in the given order.

    weights (n,): per-point weights of the squared error (LM pins an extreme with 1e5 and drops a point with 0).
    The degree is lowered to n - 1 when there are too few points. The first and last u stay at 0 and 1; interior
    u's are re-placed in alternating even/odd sweeps so that they stay ordered.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or len(pts) < 2:
        raise ValueError(f"parametric_fit needs at least 2 points as an (n, d) array, got shape {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise ValueError("parametric_fit: points contain NaN or inf")
    w = np.ones(len(pts)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(pts),) or np.any(w < 0):
        raise ValueError(f"weights must be {len(pts)} non-negative numbers, got shape {w.shape}")
    degree = min(degree, len(pts) - 1)
    u = centripetal_parameters(pts)
    coefs = _polyfit(u, pts, degree, w)
    residual = float(w @ np.linalg.norm(P.polyval(u, coefs).T - pts, axis=1))
    it = 0
    for it in range(1, max_iter + 1):
        for parity in (1, 2):  # odd then even interior indices: neighbours fixed during each sweep
            idx = np.arange(parity, len(pts) - 1, 2)
            if idx.size:
                _golden_replace(u, pts, coefs, idx)
        coefs = _polyfit(u, pts, degree, w)
        new = float(w @ np.linalg.norm(P.polyval(u, coefs).T - pts, axis=1))
        converged = residual <= 0 or (residual - new) / residual < tol
        residual = new
        if converged:
            break
    return ParametricFit(u=u, coefs=coefs, residual=residual, iterations=it)
