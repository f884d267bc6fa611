"""Re-scoring a finished sweep with other critics, and which scores status/best/report rank (issue 11).

Every trial row names the critics that scored it (results column `critics`, a content hash), and every trial's
run directory keeps the samples it was scored on (evaluation_<sampler><steps>_w<guidance>_seed<seed>.npz). So a
sweep scored with old critics can be scored again with new ones without training or sampling:

    <sweep dir>/rescored/<critics hash>/trial_<number:05d>.json
        {trial, critics, originality, recognizability, distance, human_originality, human_recognizability,
         normalization, threshold, ink_grey_share, ink_grey_share_human, samples, rescored_at}

The trial rows themselves are never rewritten: the new scores lie beside the old ones, named by critics.
`ranked_results` is what the inspection commands read: each row's scores by the dataset's shipped critics when a
re-score with them exists (the row's own scores otherwise, the originals kept in `trial_*` columns; a sweep with
no shipped-critics scores at all reads with the critics that score most of its rows; a row written before the ink
columns (schema 5) takes them from any re-score of its samples, as they do not depend on the critics), and, when the
rows are still scored by different critics, only the rows of one critics hash are ranked (distances by different
critics are not comparable: each has its own originality unit and its own human point), with a note that says so.
The reading side imports no torch.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path

from models.atomic import atomic_write_text
from search.results import CEILING_POINT_COLUMNS

RESCORED_DIR = "rescored"
INK_COLUMNS = ("ink_grey_share", "ink_grey_share_human")  # from the samples alone (evaluation/ink.py)
SCORE_COLUMNS = ("originality", "recognizability", "distance", "human_originality", "human_recognizability",
                 "critics", "threshold")


def shipped_hash(dataset: str) -> str | None:
    """The content hash of the critics shipped for `dataset` (read from the manifest; no torch), or None."""
    import evaluation

    path = Path(evaluation.__file__).resolve().parent / "critics" / str(dataset) / "manifest.json"
    try:
        return json.loads(path.read_text())["critics_hash"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return None


def rescored_path(sweep_dir, critics_hash: str, trial: int) -> Path:
    return Path(sweep_dir) / RESCORED_DIR / critics_hash / f"trial_{int(trial):05d}.json"


def samples_path(row) -> Path:
    """The samples a COMPLETE row was scored on: its run directory's evaluation npz of the row's sampler, steps,
    guidance and seed (evaluation.run_eval.result_name)."""
    from evaluation.run_eval import result_name

    name = result_name(str(row["sampler"]), int(row["sampler_steps"]), float(row["guidance"]), int(row["seed"]),
                       str(row["guidance_rule"]))  # 'cfg' for rows before schema 4 (read_results)
    return Path(row["run_dir"]) / f"{name}.npz"


def rescore_sweep(sweep_dir, critics, *, data_dir=None, force: bool = False,
                  log: Callable[[str], None] = print) -> dict[str, int]:
    """Score the stored samples of every COMPLETE trial of a sweep with `critics` (evaluation.critics.Critics)
    against their human point, and write the scores beside the trial rows. Trials already re-scored with these
    critics are skipped unless force; trials whose samples are gone are reported and skipped.
    Returns counts {'rescored', 'skipped', 'missing'}."""
    import numpy as np
    import torch

    from evaluation.evaluate import evaluate_samples
    from evaluation.human import human_points, test_source
    from evaluation.ink import ink_stats
    from models.data import load_dataset, resolve_data_dir
    from search.portable import relative_to_sweep
    from search.results import read_results

    df = read_results(sweep_dir)
    done = df[(df["state"] == "COMPLETE") & df["run_dir"].notna()]
    counts = {"rescored": 0, "skipped": 0, "missing": 0}
    if done.empty:
        return counts
    wrong = sorted(set(done["dataset"].dropna()) - {critics.dataset})
    if wrong:
        raise ValueError(f"critics {critics.hash} are for {critics.dataset!r}; the sweep has {wrong} rows")
    imageset = load_dataset(critics.dataset, data_dir=data_dir)
    human = human_points(critics, imageset, data_dir=resolve_data_dir(data_dir)[0] if critics.dataset == "omniglot"
                         else None)[test_source(critics.dataset)]
    human_grey = ink_stats(imageset.test_images)["grey_share"]
    for _, row in done.iterrows():
        out = rescored_path(sweep_dir, critics.hash, row["trial"])
        if out.is_file() and not force:
            counts["skipped"] += 1
            continue
        src = samples_path(row)
        if not src.is_file():
            log(f"trial {row['trial']}: no stored samples at {src}; not re-scored")
            counts["missing"] += 1
            continue
        samples = torch.from_numpy(np.load(src)["samples"])  # (C, K, 48, 48) uint8
        normalization = row["normalization"] if isinstance(row["normalization"], str) else "relative"
        r = evaluate_samples(samples, imageset.test_exemplars, critics, human, normalization=normalization)
        record = {"trial": int(row["trial"]), "critics": critics.hash, "originality": r["originality"],
                  "recognizability": r["recognizability"], "distance": r["distance_to_human"],
                  "human_originality": human["originality"], "human_recognizability": human["recognizability"],
                  "normalization": normalization, "threshold": critics.threshold,
                  "ink_grey_share": ink_stats(samples.numpy())["grey_share"], "ink_grey_share_human": human_grey,
                  "samples": relative_to_sweep(sweep_dir, src),  # like run_dir: true after the sweep moves
                  "rescored_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        atomic_write_text(out, json.dumps(record, indent=2) + "\n")
        log(f"trial {row['trial']}: {row['critics']} distance {row['distance']:.4f} -> {critics.hash} "
            f"distance {r['distance_to_human']:.4f}")
        counts["rescored"] += 1
    return counts


def read_rescored(sweep_dir) -> dict[str, dict[int, dict]]:
    """{critics hash: {trial: record}} of every re-score stored in the sweep directory."""
    out: dict[str, dict[int, dict]] = {}
    root = Path(sweep_dir) / RESCORED_DIR
    if not root.is_dir():
        return out
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(d.glob("trial_*.json")):
            rec = json.loads(f.read_text())
            out.setdefault(d.name, {})[int(rec["trial"])] = rec
    return out


# Columns that depend on the critics but that a re-score does not recompute (the stage ceilings' points need the
# autoencoder; the Lake 2015 point is the critics'); the latent-space ceilings do not depend on the critics.
CRITICS_COLUMNS = CEILING_POINT_COLUMNS + ("lake2015_originality", "lake2015_recognizability")


def preferred_critics(df, rescored: dict[str, dict[int, dict]], dataset: str) -> str | None:
    """Which critics' scores a dataset's COMPLETE rows are read with: the shipped critics' when any row has them
    (its own or a re-score), else those that score the most rows (own scores and re-scores together), so a sweep
    re-scored throughout with critics that are no longer shipped still reads as one; None when no row is scored."""
    done = df[(df["state"] == "COMPLETE") & (df["dataset"] == dataset)]
    cover = {str(h): set(done.loc[done["critics"] == h, "trial"].astype(int))
             for h in done["critics"].dropna().unique()}
    for h, records in rescored.items():
        cover.setdefault(h, set()).update(int(t) for t in done["trial"] if int(t) in records)
    shipped = shipped_hash(dataset)
    if shipped is not None and cover.get(shipped):
        return shipped
    return max(cover, key=lambda h: len(cover[h]), default=None)


def with_preferred_scores(df, sweep_dir):
    """The rows with the preferred critics' scores (preferred_critics: the shipped ones where they exist) where a
    re-score with them exists (column `scored_by` says 'trial' or 'rescore'); the row's own scores are kept in
    trial_<column> columns."""
    df = df.copy()
    for col in SCORE_COLUMNS:
        df[f"trial_{col}"] = df[col]
    df["scored_by"] = "trial"
    if not isinstance(sweep_dir, (str, os.PathLike)):  # a sweep in a bucket: re-scores are local files only
        return df
    rescored = read_rescored(sweep_dir)
    if not rescored or df.empty:
        return df
    for col in INK_COLUMNS:  # rows before schema 5: the ink of their samples from any re-score
        if col not in df.columns:
            df[col] = float("nan")
        for i in df.index[df[col].isna()]:
            values = [r[col] for records in rescored.values() if (r := records.get(int(df.at[i, "trial"])))
                      and r.get(col) is not None]
            if values:
                df.at[i, col] = values[0]
    for dataset in df["dataset"].dropna().unique():
        h = preferred_critics(df, rescored, dataset)
        records = rescored.get(h or "", {})
        for i in df.index[(df["dataset"] == dataset) & (df["critics"] != h)]:
            rec = records.get(int(df.at[i, "trial"]))
            if rec is None:
                continue
            for col in SCORE_COLUMNS:
                df.at[i, col] = rec[col]
            for col in CRITICS_COLUMNS:  # scored by the trial's own critics: not comparable with the re-score
                if col in df.columns:
                    df.at[i, col] = float("nan")
            df.at[i, "scored_by"] = "rescore"
    return df


def critics_groups(df) -> dict[str, int]:
    """{critics hash: number of COMPLETE rows scored by it}, most rows first."""
    done = df[(df["state"] == "COMPLETE") & df["distance"].notna() & df["critics"].notna()]
    counts = done["critics"].value_counts()
    return {str(k): int(v) for k, v in counts.items()}


def comparable(df) -> tuple[object, str | None]:
    """The frame to rank from and a note. When the COMPLETE rows are scored by more than one critics hash, only
    one group keeps its distance (the shipped critics' if present, else the largest group): the others' distance
    is set to NaN so nothing ranks them against each other (their rows still count in status)."""
    groups = critics_groups(df)
    shipped = {shipped_hash(d) for d in df["dataset"].dropna().unique()} - {None}
    listed = ", ".join(sorted(shipped)) or "none for this dataset"
    if len(groups) <= 1:
        only = next(iter(groups), None)
        if only is None or not shipped or only in shipped:
            return df, None
        return df, (f"every trial here is scored by critics {only}, not the shipped ones ({listed}): ranked among "
                    "themselves; `humanlike sweep rescore NAME` re-scores their stored samples "
                    "(trials/*/run/evaluation_*.npz) with the shipped critics")
    keep = next((h for h in groups if h in shipped), next(iter(groups)))
    why = "the shipped critics" if keep in shipped else "the most rows"
    listing = ", ".join(f"{h} ({n} trials)" for h, n in groups.items())
    note = (f"this sweep mixes critics: {listing}; distances by different critics are not comparable, so only the "
            f"{groups[keep]} trials scored by {keep} ({why}) are ranked; `humanlike sweep rescore NAME` scores the "
            f"stored samples with the shipped critics ({listed})")
    out = df.copy()
    out.loc[out["critics"] != keep, "distance"] = float("nan")
    return out, note


def ranked_results(sweep_dir) -> tuple[object, str | None]:
    """What status/best/report read: read_results + the shipped critics' re-scores + one critics group ranked."""
    from search.results import read_results

    return comparable(with_preferred_scores(read_results(sweep_dir), sweep_dir))


# What must be the same for rows of several sweeps to be ranked together (the critics are checked by comparable).
SAME_IN_COMBINED = ("dataset", "sampler", "sampler_steps", "guidance", "guidance_rule", "normalization",
                    "human_originality", "human_recognizability")


def combined_results(sweep_dirs) -> tuple[object, list[str]]:
    """ranked_results of several sweeps (say, a grid, its seed repeats and its extra weights) as one frame, and the
    notes to print. Raises ValueError naming the setting when their finished trials were evaluated differently
    (dataset, sampler, steps, guidance and its rule, normalization or human point): their distances would not be
    comparable."""
    import pandas as pd

    frames, notes = [], []
    for d in sweep_dirs:
        df, note = ranked_results(d)
        if note:
            notes.append(f"{Path(str(d)).name}: {note}")
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    done = df[df["state"] == "COMPLETE"]
    for col in SAME_IN_COMBINED:
        if col in done.columns:
            values = done[col].dropna().unique()
            if len(values) > 1 and not (done[col].dtype.kind == "f" and float(values.max() - values.min()) < 1e-9):
                by = {str(n): sorted(map(str, part[col].dropna().unique())) for n, part in done.groupby("sweep")}
                raise ValueError(f"these sweeps cannot be reported together: their trials differ in {col} ({by})")
    df, note = comparable(df)
    if note:
        notes.append(note)
    return df, notes
