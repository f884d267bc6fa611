"""What `humanlike sweep status | best | report` show: pure functions of the results DataFrame (search/results.py)
and, for parameter importance, of the Optuna study.

Figures (PNG, matplotlib without a display):
  figure3.png     the paper's Figure 3 for the sweep, drawn by evaluation.figures (as `humanlike figure fig3`):
                  originality vs recognizability of every finished trial, one colour per regularizer setting, both
                  human points as stars, per setting the parametric fit (SPEC section 6) through its weights
  distance.png    distance to human against trial number, best-so-far line; pruned and failed trials marked
  importance.png  optuna.importance.get_param_importances on the study (PED-ANOVA, Optuna's default)
  pareto.png      objective pareto: the two relative deviations from the human point and their Pareto front
  figure2.png     the paper's Figure 2: test exemplars with samples of each setting's best weight (from any seed of
                  it whose stored samples are on this machine)
  settings.md     the distance of each setting's best weight (mean over seeds), nearest first; with seed repeats,
                  the widest seed-to-seed range and the settings it does not separate from the nearest; names the
                  settings Figure 2 leaves out, or says it was not redrawn (no samples on this machine)

`sweep report NAME --with OTHER ...` reports several sweeps evaluated alike as one (search.rescore.combined_results):
figure3, figure2 and settings.md over all their trials; no distance.png or importance.png (one sweep's each).
"""
from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.config import setting_name
from search.results import PARAM_PREFIX, trained_rows

_DPI = 150


# --- pure helpers on the results frame ----------------------------------------------------------------------


def _present(value: Any) -> bool:
    """Not None / NaN / pd.NA / NaT (a scalar cell of the frame)."""
    return not bool(pd.isna(value))


def row_params(row) -> dict[str, Any]:
    """The parameters a trial really had (conditional ones absent in other families are null in the frame)."""
    out = {}
    for col in row.index:
        if col.startswith(PARAM_PREFIX) and _present(row[col]):
            value = row[col]
            out[col[len(PARAM_PREFIX):]] = value.item() if hasattr(value, "item") else value
    return out


def setting_of(row) -> str:
    """The regularizer setting of a row: its 'setting' column, else its family, else its searched weights > 0."""
    if "setting" in row.index and _present(row["setting"]):
        return str(row["setting"])
    params = row_params(row)
    if "family" in params:
        return str(params["family"])
    return setting_name({k[2:]: v for k, v in params.items() if k.startswith("w_") and isinstance(v, (int, float))})


def completed(df):
    """The COMPLETE rows with a distance, each configuration's result once: rows that reused an earlier trial's
    result (reused_from, search/driver.py) repeat it and are left out of rankings, fits and means over seeds."""
    done = trained_rows(df)
    return done[(done["state"] == "COMPLETE") & done["distance"].notna()]


def reused_count(df) -> int:
    """How many rows reused an earlier trial's result instead of training (0 for rows before schema 6)."""
    return len(df) - len(trained_rows(df))


def pareto_mask(values) -> np.ndarray:
    """values (n, k), all minimized -> (n,) bool, True where no other row is <= everywhere and < somewhere."""
    v = np.asarray(values, dtype=np.float64)
    le = (v[None, :, :] <= v[:, None, :]).all(axis=2)  # (n, n): row j weakly dominates row i
    lt = (v[None, :, :] < v[:, None, :]).any(axis=2)
    return ~(le & lt).any(axis=1)


def pareto_layers(values) -> np.ndarray:
    """values (n, k), all minimized -> (n,) int: 0 for the Pareto front, 1 for the front of the rest, and so on."""
    v = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    layer = np.full(len(v), -1)
    n = 0
    while (layer < 0).any():
        left = np.flatnonzero(layer < 0)
        layer[left[pareto_mask(v[left])]] = n
        n += 1
    return layer


def best_trials(df, k: int = 5):
    """The k COMPLETE trials closest to the human point (distance), best first; in a two-objective sweep a
    column 'pareto' says whether a trial is on the Pareto front of (value_0, value_1)."""
    done = completed(df).sort_values(["distance", "trial"])
    if done["value_1"].notna().any():
        two = done[["value_0", "value_1"]].to_numpy(dtype=np.float64)
        done = done.assign(pareto=pareto_mask(two))
    return done.head(k)


def _fmt_params(params: dict[str, Any]) -> str:
    parts = []
    for name, value in params.items():
        parts.append(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}")
    return ", ".join(parts) or "(no searched parameters)"


def status_text(df, *, name: str | None = None, n_trials: int | None = None) -> str:
    """Trials by state, progress and the best trial so far, as a few lines of text."""
    counts = {s: int((df["state"] == s).sum()) for s in ("COMPLETE", "PRUNED", "FAIL")}
    done = sum(counts.values())
    total = f" of {n_trials}" if n_trials else ""
    head = f"sweep {name}: " if name else ""
    lines = [f"{head}{done}{total} trials finished (" + ", ".join(f"{s} {n}" for s, n in counts.items()) + ")"]
    if reused := reused_count(df):
        lines[-1] += (f"; {reused} of them proposed a configuration that had finished already: its result reused, "
                      "nothing trained")
    lines += cost_lines(df)
    best = best_trials(df, 1)
    if best.empty:
        lines.append("best so far: none yet")
        return "\n".join(lines)
    row = best.iloc[0]
    lines.append(f"best so far: trial {row['trial']} ({setting_of(row)}), distance to human {row['distance']:.4f}")
    lines.append(f"  originality {row['originality']:.4f}, recognizability {row['recognizability']:.4f}"
                 + _human_text(row))
    lines.append(f"  {_fmt_params(row_params(row))}")
    if ceilings_text(row):
        lines.append(f"  {ceilings_text(row)}")
    if ink_text(row):
        lines.append(f"  {ink_text(row)}")
    if scored_text(row):
        lines.append(f"  {scored_text(row)}")
    if "pareto" in best.columns:
        front = int(pareto_mask(completed(df)[["value_0", "value_1"]].to_numpy(dtype=np.float64)).sum())
        lines.append(f"Pareto front: {front} trials")
    return "\n".join(lines)


def scored_text(row) -> str:
    """How a row's samples were drawn and scored: sampler and steps, guidance weight and rule (read_results gives
    rows before schema 4 the paper's 'cfg'), critics."""
    if not _present(row.get("sampler")):
        return ""
    steps = f"{int(row['sampler_steps'])}" if _present(row.get("sampler_steps")) else "?"
    return (f"scored with {row['sampler']}-{steps}, guidance {row['guidance']:g} ({row['guidance_rule']}), "
            f"critics {row.get('critics')}")


def ceilings_text(row) -> str:
    """Which stage limits a trial (evaluation/ceilings.py): the autoencoder's point, the copied exemplar's, and the
    sampled latents against real ones; '' for rows written before schema 3."""
    if not _present(row.get("ceiling_ae_distance")):
        return ""
    return (f"stage ceilings: autoencoder o {row['ceiling_ae_originality']:.3f} r {row['ceiling_ae_recognizability']:.3f} "
            f"(distance {row['ceiling_ae_distance']:.3f}), copied exemplar o {row['ceiling_copy_originality']:.3f} "
            f"r {row['ceiling_copy_recognizability']:.3f}; sampled latents' spread x{row['latent_spread_ratio']:.2f} "
            f"of real, nearest own exemplar {row['nearest_exemplar_sampled']:.0%} (real {row['nearest_exemplar_real']:.0%})")


def ink_text(row) -> str:
    """How faint the samples are beside people's drawings, with a warning when the distance, blind to contrast,
    flatters them (evaluation/ink.py); '' for rows written before schema 5."""
    from evaluation.ink import describe

    if not (_present(row.get("ink_grey_share")) and _present(row.get("ink_grey_share_human"))):
        return ""
    ae = row["ink_grey_share_ae"] if _present(row.get("ink_grey_share_ae")) else None
    return describe(row["ink_grey_share"], row["ink_grey_share_human"], ae)


STAGE_COLUMNS = (("RAE", "wall_rae_s"), ("LDM", "wall_ldm_s"), ("sampling", "wall_sample_s"),
                 ("critics", "wall_critics_s"), ("total", "wall_total_s"))


def cost_lines(df) -> list[str]:
    """Per-trial cost of the COMPLETE trials: mean wall seconds per stage, peak memory, and the sweep's throughput
    (finished trials per hour of wall time between the first start and the last end)."""
    df = trained_rows(df)  # reused rows cost nothing
    done = df[df["state"] == "COMPLETE"]
    if done.empty:
        return []
    parts = [f"{label} {done[col].mean():.0f} s" for label, col in STAGE_COLUMNS
             if col in done.columns and done[col].notna().any()]
    lines = ["cost per completed trial (mean): " + ", ".join(parts)] if parts else []  # none: rows without costs
    if parts and "peak_rss_mb" in done.columns and done["peak_rss_mb"].notna().any():
        lines[-1] += f"; peak memory median {done['peak_rss_mb'].median():.0f} MiB, max {done['peak_rss_mb'].max():.0f} MiB"
    if {"started_at", "finished_at"} <= set(df.columns) and df["finished_at"].notna().any():
        start = df["started_at"]
        if "wall_total_s" in df.columns:  # a trial continued from an earlier driver began its work before this start
            began = df["finished_at"] - pd.to_timedelta(df["wall_total_s"], unit="s")
            start = start.mask(began < start, began)
        span = (df["finished_at"].max() - start.min()).total_seconds()
        if span > 0:
            ended = int(df["finished_at"].notna().sum())
            lines.append(f"throughput: {3600.0 * ended / span:.1f} trials/hour ({ended} trials in {span / 60:.1f} min "
                         "of wall time, first start to last end)")
    return lines


def _human_text(row) -> str:
    if _present(row.get("human_originality")) and _present(row.get("human_recognizability")):
        return f" (human {row['human_originality']:.4f}, {row['human_recognizability']:.4f})"
    return ""


def best_text(df, k: int = 5) -> str:
    """The k most human-like configurations: parameters, metrics and run directory of each."""
    best = best_trials(df, k)
    if best.empty:
        return "no completed trials yet"
    lines = []
    for rank, (_, row) in enumerate(best.iterrows(), start=1):
        front = " [Pareto front]" if bool(row.get("pareto", False)) else ""
        lines.append(f"{rank}. trial {row['trial']} ({setting_of(row)}): distance {row['distance']:.4f}, "
                     f"originality {row['originality']:.4f}, recognizability {row['recognizability']:.4f}{front}")
        lines.append(f"   {_fmt_params(row_params(row))}")
        if ceilings_text(row):
            lines.append(f"   {ceilings_text(row)}")
        if ink_text(row):
            lines.append(f"   {ink_text(row)}")
        if _present(row.get("run_dir")):
            lines.append(f"   run: {row['run_dir']}")
    if scored_text(best.iloc[0]):
        lines.append(f"({scored_text(best.iloc[0])})")
    return "\n".join(lines)


# --- figures ------------------------------------------------------------------------------------------------


def _figure(width: float = 6.0, height: float = 4.5):
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    fig = Figure(figsize=(width, height), dpi=_DPI)
    return fig, fig.add_subplot(1, 1, 1)


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _point(df, prefix: str) -> tuple[float, float] | None:
    """The (originality, recognizability) the trials recorded as <prefix>_originality/_recognizability: 'human'
    (the held-out drawings), 'lake2015' (schema 3, Omniglot); None when no row has it."""
    columns = [f"{prefix}_originality", f"{prefix}_recognizability"]
    if not set(columns) <= set(df.columns):
        return None
    h = df[columns].dropna()
    return (float(h.iloc[0, 0]), float(h.iloc[0, 1])) if len(h) else None


def _dataset(df) -> str:
    names = df["dataset"].dropna() if "dataset" in df.columns else []
    return str(names.iloc[0]) if len(names) else "dataset"


def _config_key(row) -> str:
    """What makes two trials the same configuration: the setting and the searched parameters (not the seed)."""
    return repr((setting_of(row), sorted(row_params(row).items())))


def config_summary(df):
    """The COMPLETE trials grouped by configuration (setting and searched parameters; training seeds pooled): one
    row per configuration (its first trial's row) with the mean originality, recognizability and distance over its
    seeds, `n_seeds` and `distance_range` (max - min over the seeds, 0 for one seed)."""
    done = completed(df)
    if done.empty:
        return done.assign(setting_label=[], n_seeds=[], distance_range=[])
    done = done.assign(setting_label=[setting_of(r) for _, r in done.iterrows()],
                       _config=[_config_key(r) for _, r in done.iterrows()])
    rows = []
    for _, part in done.groupby("_config", sort=False):
        row = part.iloc[0].copy()
        for col in ("originality", "recognizability", "distance", "ceiling_ae_recognizability", "ink_grey_share"):
            if col in part.columns:
                row[col] = part[col].mean()
        row["n_seeds"] = len(part)
        row["distance_range"] = float(part["distance"].max() - part["distance"].min())
        rows.append(row)
    return pd.DataFrame(rows).drop(columns="_config")


def best_per_setting(df):
    """One row per setting: its configuration nearest to people on average over seeds (the setting's best
    weight; config_summary's columns), nearest first."""
    return _best_configs(config_summary(df))


def _best_configs(summary):
    if summary.empty:
        return summary
    best = summary.loc[summary.groupby("setting_label")["distance"].idxmin()]
    return best.sort_values("distance")


def settings_table(df) -> str:
    """Markdown: the distance of each setting's best weight (mean over seeds), with its point, the seeds behind it
    (and their range of distances), trials run and what scored it."""
    summary = config_summary(df)
    best = _best_configs(summary)
    if best.empty:
        return "no completed trials yet\n"
    counts = summary.groupby("setting_label")["n_seeds"].sum()  # trials of each setting, every weight and seed
    lines = ["| rank | setting | best weight | originality | recognizability | distance | seeds | autoencoder "
             "ceiling r | grey ink | trials |", "|---|---|---|---|---|---|---|---|---|---|"]
    for rank, (_, r) in enumerate(best.iterrows(), start=1):
        w = _weight_of(r, r["setting_label"])
        ceiling = f"{r['ceiling_ae_recognizability']:.3f}" if _present(r.get("ceiling_ae_recognizability")) else "-"
        seeds = f"{r['n_seeds']}" + (f" (range {r['distance_range']:.3f})" if r["n_seeds"] > 1 else "")
        lines.append(f"| {rank} | {r['setting_label']} | {'-' if w is None else f'{w:g}'} | {r['originality']:.3f} "
                     f"| {r['recognizability']:.3f} | {r['distance']:.3f} | {seeds} | {ceiling} | {_grey_cell(r)} "
                     f"| {counts[r['setting_label']]} |")
    first = best.iloc[0]
    human = _point(df, "human")
    lines.append("")
    lines.append(f"Distance to the held-out human point ({human[0]:.3f}, {human[1]:.3f}), "
                 f"{first.get('normalization')} normalization; {scored_text(first)}. "
                 "A configuration trained with several seeds shows the mean over its seeds.")
    lines.extend(_seed_noise_lines(summary, best))
    people = best["ink_grey_share_human"].dropna() if "ink_grey_share_human" in best.columns else ()
    if len(people):
        lines.append(f"Grey ink: the share of the samples' ink that is mid-grey (people's drawings "
                     f"{people.iloc[0]:.2f}; evaluation/ink.py); the critics binarize every image and do not see it, "
                     "'faint' marks samples that are grey ghosts of a drawing: look at them before trusting the "
                     "distance. '-': rows written before the ink was recorded.")
    return "\n".join(lines) + "\n"


def _seed_noise_lines(summary, best) -> list[str]:
    """The seed-to-seed noise the sweeps measured (the widest distance range of a configuration trained with several
    seeds) and the settings that noise does not separate from the nearest one; nothing without seed repeats."""
    repeated = summary[summary["n_seeds"] > 1]
    if repeated.empty:
        return []
    noise = float(repeated["distance_range"].max())
    first = best.iloc[0]
    tied = [s for s, d in zip(best["setting_label"].iloc[1:], best["distance"].iloc[1:])
            if d - first["distance"] <= noise]
    verdict = (f"{', '.join(tied)} {'is' if len(tied) == 1 else 'are'} within that of {first['setting_label']}: "
               "these seeds do not separate them" if tied else
               f"every other setting is farther than that from {first['setting_label']}")
    return [f"Seed-to-seed noise: the {len(repeated)} configuration(s) trained with several seeds differ by up to "
            f"{noise:.3f} in distance between seeds; {verdict}."]


def _grey_cell(r) -> str:
    from evaluation.ink import faint

    if not (_present(r.get("ink_grey_share")) and _present(r.get("ink_grey_share_human"))):
        return "-"
    flag = " faint" if faint(r["ink_grey_share"], r["ink_grey_share_human"]) else ""
    return f"{r['ink_grey_share']:.2f}{flag}"


def figure2_best(df, path: str | Path, *, data_dir=None, classes=(0, 1, 2, 3, 4, 5),
                 per_row: int = 4) -> tuple[Path | None, list[str]]:
    """Figure 2: test exemplars with samples of each setting's best configuration, from the samples one of its
    trials stored (the first, in row order, whose samples are on this machine: the figure shows one seed where the
    table gives the mean over seeds). Returns (the figure, or None when no setting has stored samples, e.g. a
    copied sweep without its trial directories; the settings left out)."""
    from evaluation.figures import figure2

    done = completed(df)
    keys = [_config_key(r) for _, r in done.iterrows()]
    samples, missing = {}, []
    for _, best in best_per_setting(df).iterrows():
        w = _weight_of(best, best["setting_label"])
        label = best["setting_label"] + ("" if w is None else f" {w:g}")
        stored = [f for (_, r), key in zip(done.iterrows(), keys)
                  if key == _config_key(best) and (f := _stored_samples(r)) is not None]
        if not stored:
            missing.append(label)
            continue
        with np.load(stored[0]) as z:
            samples[label] = z["samples"]
    if not samples:
        return None, missing
    from models.data import load_dataset

    exemplars = load_dataset(str(df["dataset"].dropna().iloc[0]), data_dir=data_dir).test_exemplars.numpy()
    return figure2(exemplars, samples, path, classes=classes, per_row=per_row), missing


def _stored_samples(row) -> Path | None:
    """The samples a row was scored on when they are on this machine (search.rescore.samples_path), else None."""
    from search.rescore import samples_path

    if not all(_present(row.get(c)) for c in ("run_dir", "sampler", "sampler_steps", "guidance", "seed")):
        return None
    path = samples_path(row)
    return path if path.is_file() else None


def _weight_of(row, setting: str) -> float | None:
    """The searched weight of a single-regularizer setting (its fit orders trials by it)."""
    value = row_params(row).get(f"w_{setting}")
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def figure3_inputs(df, *, title: str | None = None) -> dict[str, Any]:
    """The arguments of evaluation.figures.draw_figure3 for the sweep: every COMPLETE trial by its setting and
    searched weight, both human points the trials recorded and the best trial ringed."""
    done = completed(df)
    rows = [{"regularizer": (s := setting_of(r)), "weight": _weight_of(r, s), "originality": r["originality"],
             "recognizability": r["recognizability"]} for _, r in done.iterrows()]
    humans = {}
    for source, prefix in ((f"{_dataset(df)}-test", "human"), ("lake2015", "lake2015")):
        point = _point(df, prefix)
        if point is not None:
            humans[source] = {"originality": point[0], "recognizability": point[1]}
    best = None
    if len(done):
        top = best_trials(df, 1).iloc[0]
        several = "sweep" in done.columns and done["sweep"].nunique() > 1
        where = f"{top['sweep']} trial {top['trial']}" if several else f"trial {top['trial']}"
        best = (f"best ({where})", float(top["originality"]), float(top["recognizability"]))
    return {"results": rows, "human_points": humans, "title": title or "Originality vs recognizability",
            "best": best, "empty_ok": True}


def figure3(df, path: str | Path, *, title: str | None = None) -> Path:
    """The paper's Figure 3 for the sweep, drawn by evaluation.figures.figure3 (as `humanlike figure fig3`)."""
    from evaluation.figures import figure3 as draw

    return draw(out=path, **figure3_inputs(df, title=title))


def distance_figure(df, path: str | Path, *, title: str | None = None) -> Path:
    """Distance to human against trial number, with the best-so-far line."""
    fig, ax = _figure(7.2, 4.5)
    done = completed(df).sort_values("trial")
    if len(done):
        from evaluation.figures import setting_colours

        settings = [setting_of(r) for _, r in done.iterrows()]
        colours = setting_colours(settings)
        ax.scatter(done["trial"], done["distance"], c=[colours[s] for s in settings], s=24, zorder=3)
        for s, c in colours.items():
            ax.scatter([], [], color=c, s=24, label=s)
        ax.step(done["trial"], done["distance"].cummin(), where="post", color="black", lw=1.2, label="best so far")
    floor = float(done["distance"].min()) if len(done) else 0.0
    for state, marker, colour in (("PRUNED", "|", "0.5"), ("FAIL", "x", "tab:red")):
        rows = df[df["state"] == state]
        if len(rows):  # no distance for these: marked along the bottom
            ax.scatter(rows["trial"], [floor] * len(rows), marker=marker, color=colour, s=40, label=state.lower(),
                       zorder=2)
    if not len(df):
        ax.text(0.5, 0.5, "no trials yet", transform=ax.transAxes, ha="center", va="center")
    ax.set_xlabel("trial")
    ax.set_ylabel("distance to human")
    ax.set_title(title or "Distance to the human point by trial")
    ax.grid(alpha=0.3)
    if len(df):
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return _save(fig, path)


def parameter_importance(study) -> dict[str, float]:
    """optuna.importance on the study (in a two-objective study, of the distance hypot(value_0, value_1))."""
    import optuna

    import warnings

    target = (lambda t: math.hypot(*t.values)) if len(study.directions) > 1 else None
    with warnings.catch_warnings():  # PED-ANOVA reminds that it explains low targets: ours are minimized
        warnings.filterwarnings("ignore", message="PedAnovaImportanceEvaluator computes")
        return optuna.importance.get_param_importances(study, target=target)


def importance_figure(study, path: str | Path) -> Path | None:
    """Horizontal bars of parameter importance; None when the study cannot say yet (too few trials, or no
    parameter that varied)."""
    try:
        importances = parameter_importance(study)
    except (RuntimeError, ValueError):
        return None
    if not importances:
        return None
    names = list(importances)[::-1]
    fig, ax = _figure(6.0, 1.2 + 0.45 * len(names))
    ax.barh(names, [importances[n] for n in names], color="tab:blue")
    ax.set_xlabel("importance (share of the objective's variation)")
    ax.set_title("Parameter importance (Optuna's default evaluator)")
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, path)


def pareto_figure(df, path: str | Path) -> Path:
    """The two deviations from the human point (value_0, value_1) of every finished trial and their front."""
    done = completed(df).dropna(subset=["value_0", "value_1"])
    fig, ax = _figure()
    if len(done):
        v = done[["value_0", "value_1"]].to_numpy(dtype=np.float64)
        front = pareto_mask(v)
        ax.scatter(v[~front, 0], v[~front, 1], color="0.6", s=20, label="dominated")
        order = np.argsort(v[front, 0])
        ax.step(v[front, 0][order], v[front, 1][order], where="post", color="tab:red", lw=1.0)
        ax.scatter(v[front, 0], v[front, 1], color="tab:red", s=30, label=f"Pareto front ({front.sum()})", zorder=3)
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no completed trials yet", transform=ax.transAxes, ha="center", va="center")
    relative = (done["normalization"] == "relative").all() if len(done) else True
    ax.set_xlabel("|o - o_h| / o_h" if relative else "|o - o_h|")
    ax.set_ylabel("|r - r_h| / r_h" if relative else "|r - r_h|")
    ax.set_title("Deviation from the human point (0, 0 = human)")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def figure_caption(df, budget: str | None = None) -> str:
    """What a figure about models must name: the training budget (when known), the sampler and steps, the
    guidance weight and rule, and the critics, from the sweep's finished rows ('' when none)."""
    done = completed(df)
    scored = scored_text(done.iloc[0]) if len(done) else ""
    return "; ".join(part for part in (budget, scored) if part)


def write_report(df, out_dir: str | Path, *, study=None, name: str | None = None, data_dir=None,
                 budget: str | None = None) -> list[Path]:
    """Every figure that applies to this sweep, written under out_dir; returns the paths written. budget: how the
    trials were trained (e.g. 'preset standard: RAE 8 + LDM 40 epochs'), named under the figures' titles."""
    out_dir = Path(out_dir)
    label = f" ({name})" if name else ""
    caption = figure_caption(df, budget)
    below = f"\n{textwrap.fill(caption, 56)}" if caption else ""
    title = textwrap.fill(f"Originality vs recognizability{label}", 64) + below  # several sweeps' names: wrapped
    paths = [figure3(df, out_dir / "figure3.png", title=title)]
    if "sweep" not in df.columns or df["sweep"].nunique() <= 1:  # trial numbers of several sweeps would collide
        paths.append(distance_figure(df, out_dir / "distance.png",
                                     title=f"Distance to the human point by trial{label}{below}"))
    if study is not None:
        importance = importance_figure(study, out_dir / "importance.png")
        if importance is not None:
            paths.append(importance)
    if df["value_1"].notna().any():
        paths.append(pareto_figure(df, out_dir / "pareto.png"))
    note = ""
    if len(completed(df)) and "dataset" in df.columns and df["dataset"].notna().any():
        # A figure2.png already there came from an earlier report: one with fewer settings does not replace it.
        earlier = (out_dir / "figure2.png").is_file()
        partial = out_dir / "figure2_partial.png"
        fig2, missing = figure2_best(df, partial, data_dir=data_dir)
        if fig2 is not None and (not missing or not earlier):
            fig2 = fig2.replace(out_dir / "figure2.png")
        elif partial.is_file() and fig2 is None:
            partial.unlink()  # a partial figure of an earlier report, now with nothing to draw
        if fig2 is not None:
            paths.append(fig2)
        if fig2 is None:
            note = ("\nFigure 2 was not redrawn: no trial has its samples on this machine (run directories are not "
                    "committed); a figure2.png beside this file is from an earlier report and may show other "
                    "weights than this table's.\n")
        elif missing and earlier:
            note = (f"\nFigure 2 was not redrawn: this machine lacks the samples of {', '.join(missing)} (run "
                    "directories are not committed), so the figure2.png beside this file is kept from an earlier "
                    "report and may show other weights than this table's; figure2_partial.png draws the settings "
                    "whose samples are here.\n")
        elif missing:
            note = (f"\nFigure 2 leaves out {', '.join(missing)}: no trial of that configuration has its samples "
                    "on this machine (run directories are not committed).\n")
    table = out_dir / "settings.md"
    table.write_text(f"# Each setting's best weight{label}\n\n" + settings_table(df) + note)
    paths.append(table)
    return paths
