"""Figures 3 and 2 from plain data: labels, fits, files, bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation.figures import _fit_curve, _rows, draw_figure2, draw_figure3, figure2, figure3, regularizer_label, setting_colours


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


HUMAN = {"omniglot-test": {"originality": 0.9, "recognizability": 0.93},
         "lake2015": {"originality": 1.0, "recognizability": 0.9}}


def _series(fig) -> dict[str, np.ndarray]:
    """{legend label: (n, 2) points} of every scatter series drawn on the figure's one axes."""
    (ax,) = fig.axes
    return {c.get_label(): np.asarray(c.get_offsets()) for c in ax.collections}


def test_figure3_draws_every_setting_the_fits_and_both_human_stars():
    fig = draw_figure3(_sweep(), human_points=HUMAN, title="test", best=("best (trial 7)", 0.5, 0.9))
    (ax,) = fig.axes
    series = _series(fig)
    assert list(series) == ["none", "kl", "prototype", "human (held-out, omniglot-test)",
                            "human (Lake et al. 2015)", "best (trial 7)"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(series)
    # each setting's points, recognizability in %
    np.testing.assert_allclose(series["kl"], [[0.8 + 0.15 * i, 100 * (0.95 - 0.08 * i)] for i in range(4)])
    np.testing.assert_allclose(series["none"], [[1.0, 70.0]])
    # the held-out human star is black and filled, Lake's hollow; both where the points are
    stars = [c for c in ax.collections if c.get_label().startswith("human")]
    np.testing.assert_allclose(stars[0].get_offsets(), [[0.9, 93.0]])
    np.testing.assert_allclose(stars[1].get_offsets(), [[1.0, 90.0]])
    assert tuple(stars[0].get_facecolor()[0]) == (0.0, 0.0, 0.0, 1.0)
    assert tuple(stars[1].get_facecolor()[0]) == (1.0, 1.0, 1.0, 1.0)
    # one fit per setting with >= 3 weights (kl, prototype; not 'none'), from its first weight to its last
    assert len(ax.lines) == 2
    kl_line = np.asarray(ax.lines[0].get_xydata())
    np.testing.assert_allclose(kl_line[0], [0.8, 95.0], atol=2.0)
    np.testing.assert_allclose(kl_line[-1], [1.25, 71.0], atol=2.0)
    assert ax.get_xlabel().startswith("originality") and ax.get_ylabel().startswith("recognizability (%")
    assert ax.get_title() == "test"
    # one colour per setting, the same in every figure: 'none' grey, a regularizer its registry colour
    colours = setting_colours(["prototype", "kl", "none"])
    assert list(colours) == ["none", "kl", "prototype"] and colours["none"] == "0.35"
    assert setting_colours(["kl"])["kl"] == colours["kl"] != colours["prototype"]


def test_figure3_from_dicts_and_dataframe_draw_the_same(tmp_path):
    df = pd.DataFrame([{"regularizer": r["regularizer"], "weight": r["weight"], "originality": r["originality"],
                        "recognizability": r["recognizability"]} for r in _rows(_sweep())])
    a, b = _series(draw_figure3(_sweep(), human_points=HUMAN)), _series(draw_figure3(df, human_points=HUMAN))
    assert list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)
    out = figure3(df, tmp_path / "b.png", human_points=HUMAN)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figure3_of_no_results_draws_the_human_points_only_when_asked():
    fig = draw_figure3([], human_points=HUMAN, empty_ok=True)
    assert list(_series(fig)) == ["human (held-out, omniglot-test)", "human (Lake et al. 2015)"]
    assert any(t.get_text() == "no completed trials yet" for t in fig.axes[0].texts)


def test_figure3_bad_input(tmp_path):
    with pytest.raises(ValueError, match="no results"):
        figure3([], tmp_path / "x.png")
    with pytest.raises(ValueError, match="result 0: missing or non-finite 'recognizability'"):
        figure3([{"regularizers": {}, "originality": 1.0}], tmp_path / "x.png")


def test_figure2_shows_the_exemplar_then_each_runs_samples(tmp_path):
    rng = np.random.default_rng(0)
    ex = (rng.random((4, 48, 48)) > 0.9).astype(np.uint8) * 255
    runs = {"a": rng.random((4, 5, 48, 48)), "b": rng.random((4, 3, 48, 48))}
    fig = draw_figure2(ex, runs, classes=[0, 2], per_row=4)
    shown = [ax for ax in fig.axes if ax.images]  # tiles; the gap columns are blank
    assert len(shown) == 2 * (1 + 3 + 3)  # two classes x (exemplar + 3 samples of each run: min(per_row, K))
    first_row = shown[:7]
    np.testing.assert_allclose(first_row[0].images[0].get_array(), 1.0 - ex[0] / 255.0)  # ink dark on white
    np.testing.assert_allclose(first_row[1].images[0].get_array(), 1.0 - runs["a"][0, 0], atol=1e-6)
    np.testing.assert_allclose(first_row[4].images[0].get_array(), 1.0 - runs["b"][0, 0], atol=1e-6)
    np.testing.assert_allclose(shown[7].images[0].get_array(), 1.0 - ex[2] / 255.0)  # second row: class 2
    assert {ax.get_title() for ax in fig.axes} - {""} == {"exemplar", "a", "b"}
    out = figure2(ex, runs, tmp_path / "f2.png", classes=[0, 2], per_row=4)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="class 7"):
        figure2(ex, runs, tmp_path / "f2.png", classes=[7])
    with pytest.raises(ValueError, match="samples of 'c'"):
        figure2(ex, {"c": rng.random((3, 2, 48, 48))}, tmp_path / "f2.png")
