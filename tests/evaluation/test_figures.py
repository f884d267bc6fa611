"""Figures 3 and 2 from plain data: labels, fits, files, bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation.figures import _fit_curve, _rows, figure2, figure3, regularizer_label


def test_regularizer_label():
    assert regularizer_label({}) == ("none", 0.0)
    assert regularizer_label({"kl": 0.0}) == ("none", 0.0)
    assert regularizer_label({"prototype": 1.0, "barlow": 10.0}) == ("barlow+prototype", 10.0)


def _sweep() -> list[dict]:
    rows = []
    for name, (o0, r0) in {"kl": (0.8, 0.95), "prototype": (0.5, 0.9)}.items():
        for i, w in enumerate([0.01, 0.1, 1.0, 10.0]):
            rows.append({"regularizers": {name: w}, "originality": o0 + 0.15 * i, "recognizability": r0 - 0.08 * i})
    rows.append({"regularizers": {}, "originality": 1.0, "recognizability": 0.7})
    return rows


def test_fit_curve_runs_from_first_to_last_weight():
    group = [r for r in _rows(_sweep()) if r["regularizer"] == "kl"]
    curve = _fit_curve(group[::-1])  # order of the input does not matter: the fit orders by weight
    assert curve.shape == (200, 2)
    np.testing.assert_allclose(curve[0], [0.8, 0.95], atol=0.02)
    np.testing.assert_allclose(curve[-1], [1.25, 0.71], atol=0.02)
    assert _fit_curve(group[:2]) is None


def test_figure3_from_dicts_and_dataframe(tmp_path):
    human = {"omniglot-test": {"originality": 0.9, "recognizability": 0.93},
             "lake2015": {"originality": 1.0, "recognizability": 0.9}}
    a = figure3(_sweep(), tmp_path / "a.png", human_points=human, title="test")
    df = pd.DataFrame([{"regularizer": r["regularizer"], "weight": r["weight"], "originality": r["originality"],
                        "recognizability": r["recognizability"]} for r in _rows(_sweep())])
    b = figure3(df, tmp_path / "b.png", human_points=human)
    assert a.stat().st_size > 20_000 and b.stat().st_size > 20_000


def test_figure3_bad_input(tmp_path):
    with pytest.raises(ValueError, match="no results"):
        figure3([], tmp_path / "x.png")
    with pytest.raises(ValueError, match="result 0: missing or non-finite 'recognizability'"):
        figure3([{"regularizers": {}, "originality": 1.0}], tmp_path / "x.png")


def test_figure2(tmp_path):
    rng = np.random.default_rng(0)
    ex = (rng.random((4, 48, 48)) > 0.9).astype(np.uint8) * 255
    runs = {"a": rng.random((4, 5, 48, 48)), "b": rng.random((4, 3, 48, 48))}
    out = figure2(ex, runs, tmp_path / "f2.png", classes=[0, 2], per_row=4)
    assert out.stat().st_size > 5_000
    with pytest.raises(ValueError, match="class 7"):
        figure2(ex, runs, tmp_path / "f2.png", classes=[7])
    with pytest.raises(ValueError, match="samples of 'c'"):
        figure2(ex, {"c": rng.random((3, 2, 48, 48))}, tmp_path / "f2.png")
