"""The paper's Figure 3 (originality vs recognizability) and Figure 2 (exemplars with samples), as PNGs.

Both are functions of plain data (a list of evaluation dicts or a DataFrame; arrays of images), so a sweep's
report can call them directly; `figure_from_files` reads evaluation JSONs written by `humanlike evaluate`.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from evaluation.fit import parametric_fit

NO_REGULARIZER = "none"


def regularizer_label(regularizers: Mapping[str, float]) -> tuple[str, float]:
    """(setting, weight) of a run: models.config.setting_name, and the weight of the first active name (0 for
    'none')."""
    from models.config import setting_name

    active = [float(v) for _, v in sorted(regularizers.items()) if float(v) > 0]
    return setting_name(regularizers), (active[0] if active else 0.0)


def _rows(results) -> list[dict]:
    """Evaluation dicts or a DataFrame -> rows with regularizer (the setting), weight, originality, recognizability."""
    if hasattr(results, "to_dict"):  # a pandas DataFrame
        results = results.to_dict("records")
    rows = []
    for i, r in enumerate(results):
        if "regularizer" in r:
            weight = r.get("weight")  # None (or NaN in a frame) for 'none' and combined settings: no fit
            label, weight = str(r["regularizer"]), 0.0 if weight is None or math.isnan(weight) else float(weight)
        else:
            label, weight = regularizer_label(r.get("regularizers", {}))
        for key in ("originality", "recognizability"):
            if key not in r or r[key] is None or not math.isfinite(float(r[key])):
                raise ValueError(f"result {i}: missing or non-finite {key!r}")
        rows.append({"regularizer": label, "weight": weight, "originality": float(r["originality"]),
                     "recognizability": float(r["recognizability"])})
    return rows


def _fit_curve(group: list[dict]) -> np.ndarray | None:
    """The SPEC section 6 fit through a setting's runs ordered by weight, in (log10 w, o, r): (200, 2) of (o, r),
    or None with fewer than three distinct positive weights (a curve needs a few; seeds may repeat a weight)."""
    group = sorted((r for r in group if r["weight"] > 0), key=lambda r: r["weight"])
    distinct = len({r["weight"] for r in group})
    if distinct < 3:
        return None
    pts = np.array([[math.log10(r["weight"]), r["originality"], r["recognizability"]] for r in group])
    return parametric_fit(pts, degree=min(3, distinct - 1)).curve(200)[:, 1:]


def setting_colours(settings) -> dict[str, object]:
    """A fixed colour per setting in every figure: 'none' grey, each registered regularizer the tab10 colour of its
    place in the registry (models.regularizers.NAMES), combinations and unregistered names the colours after.
    Returns {setting: colour} in that order (the legend's)."""
    import matplotlib

    from models.regularizers import NAMES

    present = set(settings)
    names = list(NAMES)
    extra = sorted(s for s in present if s != NO_REGULARIZER and s not in names)
    cmap = matplotlib.colormaps["tab10"]
    order = [NO_REGULARIZER] * (NO_REGULARIZER in present) + [n for n in names if n in present] + extra
    return {s: "0.35" if s == NO_REGULARIZER else cmap((names + extra).index(s) % 10) for s in order}


def human_label(source: str) -> str:
    if source == "lake2015":
        return "human (Lake et al. 2015)"
    return f"human (held-out, {source})" if source.endswith("-test") else f"human ({source})"


def draw_figure3(results, *, human_points: Mapping[str, Mapping] | None = None, title: str | None = None,
                 best: tuple[str, float, float] | None = None, empty_ok: bool = False):
    """The paper's Figure 3 as a matplotlib Figure (no pyplot state): originality (x) against recognizability in
    % (y), a colour per setting (`setting_colours`), the SPEC section 6 fit through each setting's weights, the
    human points as stars (the dataset's held-out drawings black, other human references hollow) and, if given,
    `best` = (label, originality, recognizability) ringed.

    results: evaluation dicts (with 'regularizers', or 'regularizer' + 'weight') or a DataFrame with those columns.
    human_points: {source: {'originality', 'recognizability'}}; default: those stored in the first result.
    empty_ok: draw the human points and a note when there are no results (a sweep's report before its first
    trial ends) instead of raising.
    """
    from matplotlib.figure import Figure

    rows = _rows(results)
    if not rows and not empty_ok:
        raise ValueError("figure3: no results to plot")
    if human_points is None and not hasattr(results, "to_dict"):
        human_points = next((r.get("human_points") for r in results if r.get("human_points")), None)
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["regularizer"], []).append(r)
    fig = Figure(figsize=(6.4, 4.4), dpi=200)
    ax = fig.add_subplot(1, 1, 1)
    colours = setting_colours(groups)
    for label, colour in colours.items():
        group = groups[label]
        ax.scatter([r["originality"] for r in group], [100 * r["recognizability"] for r in group], s=18,
                   color=colour, alpha=0.85, label=label, edgecolors="none", zorder=3)
        curve = _fit_curve(group)
        if curve is not None:
            ax.plot(curve[:, 0], 100 * curve[:, 1], color=colour, lw=1.4, alpha=0.9, zorder=2)
    ordered = sorted((human_points or {}).items(), key=lambda kv: (not kv[0].endswith("-test"), kv[0]))
    for j, (source, p) in enumerate(ordered):
        ax.scatter([p["originality"]], [100 * p["recognizability"]], marker="*", s=260, zorder=5,
                   color="black" if j == 0 else "white", edgecolors="black", linewidths=1.0,
                   label=human_label(source))
    if best is not None:
        ax.scatter([best[1]], [100 * best[2]], s=140, facecolors="none", edgecolors="black", linewidths=1.2,
                   label=best[0], zorder=6)
    if not rows:
        ax.text(0.5, 0.5, "no completed trials yet", transform=ax.transAxes, ha="center", va="center")
    ax.set_xlabel("originality (distance to exemplar, SimCLR features / s)")
    ax.set_ylabel("recognizability (% correct, 20-way 1-shot)")
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.25, lw=0.5)
    if rows or ordered:
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0), markerscale=0.8)
    fig.tight_layout()
    return fig


def figure3(results, out: str | Path, **kwargs) -> Path:
    """`draw_figure3(results, **kwargs)` saved as a PNG at `out` (used by `humanlike figure` and `sweep report`)."""
    return _save(draw_figure3(results, **kwargs), out)


def _save(fig, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


def draw_figure2(exemplars: np.ndarray, samples: Mapping[str, np.ndarray], *,
                 classes: Sequence[int] = (0, 1, 2, 3, 4, 5), per_row: int = 6):
    """Rows = classes; columns = the exemplar, then `per_row` samples of each run (titles name the runs).

    exemplars (C, 48, 48) and samples {name: (C, K, 48, 48)}, uint8 or float in [0, 1], ink high.
    Drawn dark ink on white paper; returns a matplotlib Figure (no pyplot state).
    """
    from matplotlib.figure import Figure

    if not samples:
        raise ValueError("figure2: no runs to show")
    ex = _unit(exemplars)
    runs = {name: _unit(s) for name, s in samples.items()}
    for name, s in runs.items():
        if s.ndim != 4 or s.shape[0] != ex.shape[0]:
            raise ValueError(f"figure2: samples of {name!r} must be (C={ex.shape[0]}, K, H, W), got {s.shape}")
        if max(classes) >= s.shape[0]:
            raise ValueError(f"figure2: class {max(classes)} outside the {s.shape[0]} test classes")
    k = min([per_row] + [s.shape[1] for s in runs.values()])
    gap = 0.3  # a narrow empty column before each block, in image widths
    ratios = [1.0] + ([gap] + [1.0] * k) * len(runs)
    fig = Figure(figsize=(0.45 * sum(ratios), 0.45 * len(classes) + 0.35), dpi=200)
    axes = fig.subplots(len(classes), len(ratios), squeeze=False, gridspec_kw={"width_ratios": ratios})
    tile_cols = [0] + [1 + b * (k + 1) + 1 + j for b in range(len(runs)) for j in range(k)]
    for row, c in enumerate(classes):
        tiles = [ex[c]] + [s[c, j] for s in runs.values() for j in range(k)]
        for ax in axes[row]:
            ax.axis("off")
        for col, tile in zip(tile_cols, tiles):
            ax = axes[row, col]
            ax.axis("on")
            ax.imshow(1.0 - tile, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_linewidth(1.2 if col == 0 else 0.3)
                spine.set_color("tab:red" if col == 0 else "0.7")
    axes[0, 0].set_title("exemplar", fontsize=6)
    for i, name in enumerate(runs):
        axes[0, 1 + i * (k + 1) + 1 + (k - 1) // 2].set_title(name, fontsize=6)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.92, wspace=0.06, hspace=0.06)
    return fig


def figure2(exemplars: np.ndarray, samples: Mapping[str, np.ndarray], out: str | Path, **kwargs) -> Path:
    """`draw_figure2(exemplars, samples, **kwargs)` saved as a PNG at `out`."""
    return _save(draw_figure2(exemplars, samples, **kwargs), out)


def _unit(images) -> np.ndarray:
    a = np.asarray(images)
    return a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)


def read_result(path: str | Path) -> tuple[dict, Path]:
    """An evaluation JSON, or the newest evaluation JSON in a run directory."""
    p = Path(path)
    if p.is_dir():
        found = sorted(p.glob("evaluation_*.json"), key=lambda f: f.stat().st_mtime)
        if not found:
            raise FileNotFoundError(f"{p}: no evaluation_*.json (run `humanlike evaluate {p}` first)")
        p = found[-1]
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such evaluation file or run directory")
    return json.loads(p.read_text()), p


def figure_from_files(which: str, inputs: Sequence[str], out: str | Path, *, classes: Sequence[int] = (0, 1, 2),
                      per_row: int = 6, data_dir=None) -> Path:
    """`humanlike figure fig3|fig2 INPUTS --out PNG`: inputs are evaluation JSONs or run directories.

    fig2 reads each result's samples file and the test exemplars of its dataset (from data_dir)."""
    loaded = [read_result(i) for i in inputs]
    if which == "fig3":
        return figure3([r for r, _ in loaded], out)
    if which != "fig2":
        raise ValueError(f"unknown figure {which!r}; expected fig3 or fig2")
    from models.data import load_dataset

    first = loaded[0][0]
    exemplars = load_dataset(first["dataset"], data_dir=data_dir).test_exemplars.numpy()
    samples = {}
    for r, path in loaded:
        label, weight = regularizer_label(r.get("regularizers", {}))
        name = f"{label} {weight:g}" if label != NO_REGULARIZER else label
        with np.load(path.with_name(r["samples_file"])) as z:
            samples[f"{name} ({Path(r['run_dir']).name})"] = z["samples"]
    return figure2(exemplars, samples, out, classes=classes, per_row=per_row)
