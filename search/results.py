"""The results store: one Parquet file per finished trial, <sweep dir>/results/trial_<number:05d>.parquet.

Each file is written atomically (models.atomic: a temporary file in the same directory, fsync, os.replace; in a
bucket one whole object: search/storage.py), so the store is readable while the sweep runs and a killed writer
leaves either the old row or the new one, never half of one; writing the same trial again replaces its row.
`read_results` concatenates the files; `export` writes one file.

Schema (SCHEMA_VERSION = 6; version 1 files (without the sampling/critics split), version 2 files (without the
stage ceilings), version 3 files (without guidance_rule), version 4 files (without the ink columns) and version 5
files (without reused_from) are still read: their missing columns are null, except guidance_rule, which
read_results gives as 'cfg', the only rule before version 4). Every column but sweep, trial,
state and schema_version may be null.

| column                 | type          | meaning                                                                  |
|------------------------|---------------|--------------------------------------------------------------------------|
| schema_version         | int32         | version of this column list                                              |
| sweep                  | string        | sweep name                                                               |
| trial                  | int64         | Optuna trial number                                                      |
| state                  | string        | COMPLETE, PRUNED or FAIL                                                 |
| setting                | string        | active regularizers, e.g. 'none', 'prototype', 'barlow+prototype'        |
| dataset                | string        | omniglot, quickdraw or qdfs                                              |
| originality            | float64       | fixed-unit originality of the trial's samples (SPEC part 0)              |
| recognizability        | float64       | 20-way 1-shot accuracy of the critic on the samples                      |
| distance               | float64       | distance to the human point under `normalization`                        |
| objective              | string        | 'distance' or 'pareto'                                                   |
| value_0, value_1       | float64       | what Optuna minimized: (distance, null) or (|do|, |dr|) for pareto      |
| last_step, last_value  | int64/float64 | the last intermediate value reported to the pruner and its step          |
| human_originality      | float64       | the human point used                                                     |
| human_recognizability  | float64       |                                                                          |
| normalization          | string        | 'relative' (each axis divided by the human value) or 'absolute'          |
| critics                | string        | content hash of the critics that scored the samples                      |
| threshold              | float64       | binarization threshold of the critics' preprocessing (SPEC part 0)       |
| sampler                | string        | diffusion sampler of the evaluation: ddim or ddpm                        |
| sampler_steps          | int64         | its number of steps                                                      |
| guidance               | float64       | classifier-free guidance weight w                                        |
| guidance_rule          | string        | how guidance is applied: cfg (the paper's) or projected (ours)           |
| seed                   | int64         | training seed                                                            |
| wall_rae_s, wall_ldm_s, wall_eval_s, wall_total_s | float64 | wall time of each stage and of the trial, seconds (over every attempt of a continued trial) |
| wall_sample_s, wall_critics_s | float64 | the evaluation split: generating the samples / scoring them (critics)     |
| peak_rss_mb            | float64       | peak resident memory of the trial process, MiB                           |
| ceiling_ae_originality, ceiling_ae_recognizability, ceiling_ae_distance | float64 | the held-out human drawings through the trial's autoencoder, scored like the samples (evaluation/ceilings.py) |
| ceiling_copy_originality, ceiling_copy_recognizability, ceiling_copy_distance | float64 | each exemplar through the autoencoder, as many times as a class has samples |
| latent_spread_ratio    | float64       | spread of the sampled latents / spread of the encoded test drawings      |
| nearest_exemplar_sampled, nearest_exemplar_real | float64 | fraction of sampled latents / encoded test drawings nearest their own class's exemplar latent |
| wall_ceilings_s        | float64       | what the stage ceilings cost, seconds (part of wall_eval_s)              |
| ink_grey_share, ink_grey_share_human, ink_grey_share_ae | float64 | of the ink pixels, the share that is mid-grey: the samples', the held-out human drawings' and those drawings through the trial's autoencoder (evaluation/ink.py; the critics binarize and do not see it) |
| lake2015_originality, lake2015_recognizability | float64 | the second human point (Lake et al. 2015, Omniglot only) with the same critics |
| node, ray_node         | string        | host name and Ray node id the trial ran on (ray_node null without Ray)   |
| retries, oom_retries   | int64         | restarts after a failed worker (node lost, out of GPU memory) / OOM ones |
| code_version           | string        | `git describe --always --dirty` or the package version                   |
| error                  | string        | why a FAIL trial failed (or why a trial was pruned)                      |
| reused_from            | int64         | the earlier trial of the sweep whose result this row repeats: the sampler proposed a configuration that had finished already, so nothing was trained (search/driver.py); null for a trial that ran |
| run_dir                | string        | the trial's run directory (checkpoints, samples.png), relative to the sweep directory (older rows: absolute); read_results gives it absolute |
| started_at, finished_at| timestamp[us, UTC] | when the attempt that finished the trial started, and when it ended   |
| param.<name>           | per parameter | every searched parameter (search/space.py names: w_prototype, family...) |
"""
from __future__ import annotations

import datetime as dt
import functools
import math
import subprocess
from pathlib import Path
from typing import Any, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from models.atomic import atomic_open
from search.storage import Location, as_path, read_parquet, write_atomic

SCHEMA_VERSION = 6
STATES = ("COMPLETE", "PRUNED", "FAIL")
PARAM_PREFIX = "param."
RESULTS_DIR = "results"
_TIME = pa.timestamp("us", tz="UTC")
# The stage ceilings' points (evaluation/ceilings.py): ceiling_<stage>_<axis>, as search/trial.py fills them.
CEILING_STAGES = ("ae", "copy")
CEILING_AXES = ("originality", "recognizability", "distance")
CEILING_POINT_COLUMNS = tuple(f"ceiling_{stage}_{axis}" for stage in CEILING_STAGES for axis in CEILING_AXES)
SCHEMA = pa.schema([
    ("schema_version", pa.int32()), ("sweep", pa.string()), ("trial", pa.int64()), ("state", pa.string()),
    ("setting", pa.string()), ("dataset", pa.string()),
    ("originality", pa.float64()), ("recognizability", pa.float64()), ("distance", pa.float64()),
    ("objective", pa.string()), ("value_0", pa.float64()), ("value_1", pa.float64()),
    ("last_step", pa.int64()), ("last_value", pa.float64()),
    ("human_originality", pa.float64()), ("human_recognizability", pa.float64()),
    ("normalization", pa.string()), ("critics", pa.string()), ("threshold", pa.float64()),
    ("sampler", pa.string()), ("sampler_steps", pa.int64()), ("guidance", pa.float64()),
    ("guidance_rule", pa.string()), ("seed", pa.int64()),
    ("wall_rae_s", pa.float64()), ("wall_ldm_s", pa.float64()), ("wall_eval_s", pa.float64()),
    ("wall_sample_s", pa.float64()), ("wall_critics_s", pa.float64()),
    ("wall_total_s", pa.float64()), ("peak_rss_mb", pa.float64()),
    *((name, pa.float64()) for name in CEILING_POINT_COLUMNS),
    ("latent_spread_ratio", pa.float64()), ("nearest_exemplar_sampled", pa.float64()),
    ("nearest_exemplar_real", pa.float64()), ("wall_ceilings_s", pa.float64()),
    ("ink_grey_share", pa.float64()), ("ink_grey_share_human", pa.float64()), ("ink_grey_share_ae", pa.float64()),
    ("lake2015_originality", pa.float64()), ("lake2015_recognizability", pa.float64()),
    ("node", pa.string()), ("ray_node", pa.string()), ("retries", pa.int64()), ("oom_retries", pa.int64()),
    ("code_version", pa.string()), ("error", pa.string()), ("reused_from", pa.int64()), ("run_dir", pa.string()),
    ("started_at", _TIME), ("finished_at", _TIME),
])
COLUMNS = tuple(SCHEMA.names)


def trial_path(sweep_dir: str | Path, number: int) -> Path:
    """<sweep dir>/results/trial_<number>.parquet: a Path, or a storage.Location when the sweep is in a bucket."""
    return as_path(sweep_dir) / RESULTS_DIR / f"trial_{number:05d}.parquet"


# --- writing ----------------------------------------------------------------------------------------------------


def write_trial_row(sweep_dir: str | Path, row: Mapping[str, Any], *, space=None) -> Path:
    """Write one trial's row atomically and return its path. `row` holds columns of SCHEMA, 'param.<name>'
    columns and/or a 'params' dict (expanded to 'param.<name>'); unknown keys are an error (a typo would
    otherwise vanish). schema_version is filled in.

    space (the sweep's SpaceSpec; pass it): every file then has one column per parameter of the space, typed
    from it and null where a trial has no such parameter (conditional weights), so that all files share one
    schema and `pandas.read_parquet(<sweep dir>/results)` reads them as one table."""
    table = row_table(relative_run_dir(sweep_dir, row), space=space)
    path = trial_path(sweep_dir, table.column("trial")[0].as_py())
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_table(table, path)
    return path


def param_fields(space) -> list[pa.Field]:
    """The 'param.<name>' columns of a search space, sorted by name, typed from its dimensions."""
    from search.space import Choice, dims_by_name

    types = {"family": pa.string()} if space.mode == "family" else {}
    for name, dim in dims_by_name(space).items():
        if isinstance(dim, Choice):
            types[name] = _param_type(name, dim.choices[0])  # the choices of one dimension share a type
        else:
            types[name] = pa.int64() if dim.integer else pa.float64()
    return [pa.field(f"{PARAM_PREFIX}{n}", types[n]) for n in sorted(types)]


def row_table(row: Mapping[str, Any], *, space=None) -> pa.Table:
    """One validated row as a one-line table with SCHEMA's columns first, then the param columns (sorted)."""
    row = dict(row)
    params = row.pop("params", None) or {}
    for name, value in params.items():
        row[f"{PARAM_PREFIX}{name}"] = value
    version = row.pop("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise ValueError(f"schema_version: this code writes version {SCHEMA_VERSION}, got {version!r}")
    unknown = sorted(k for k in row if k not in COLUMNS and not k.startswith(PARAM_PREFIX))
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown results column (known: {', '.join(COLUMNS)}, param.<name>)")
    for key in ("sweep", "trial", "state"):
        if row.get(key) is None:
            raise ValueError(f"{key}: required in every results row")
    if isinstance(row["trial"], bool) or not isinstance(row["trial"], int) or row["trial"] < 0:
        raise ValueError(f"trial: expected an Optuna trial number (int >= 0), got {row['trial']!r}")
    if row["state"] not in STATES:
        raise ValueError(f"state: expected one of {', '.join(STATES)}, got {row['state']!r}")
    row["schema_version"] = SCHEMA_VERSION
    for key in ("started_at", "finished_at"):
        row[key] = _timestamp(key, row.get(key))
    names = sorted(k for k in row if k.startswith(PARAM_PREFIX))
    if space is None:
        params = [pa.field(n, _param_type(n, _plain(row[n]))) for n in names]
    else:
        params = param_fields(space)
        extra = sorted(set(names) - {f.name for f in params})
        if extra:
            raise ValueError(f"{extra[0]}: not a parameter of the sweep's search space")
    fields = list(SCHEMA) + params
    try:
        arrays = [pa.array([_plain(row.get(f.name))], type=f.type) for f in fields]
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValueError(f"results row of trial {row['trial']}: a value does not fit its column ({exc})") from None
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _plain(value: Any) -> Any:
    """numpy scalars -> Python; NaN stays NaN (a float column may hold it)."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


def _param_type(name: str, value: Any) -> pa.DataType:
    if value is None:
        return pa.null()
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int):
        return pa.int64()
    if isinstance(value, float):
        return pa.float64()
    if isinstance(value, str):
        return pa.string()
    raise ValueError(f"{name}: a parameter must be a number, a string or a bool, got {value!r}")


def _timestamp(key: str, value: Any) -> dt.datetime | None:
    """datetime (naive = UTC), ISO 8601 text or seconds since the epoch -> aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        value = dt.datetime.fromtimestamp(value, tz=dt.timezone.utc)
    if not isinstance(value, dt.datetime):
        raise ValueError(f"{key}: expected a datetime, ISO text or epoch seconds, got {value!r}")
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def _atomic_write_table(table: pa.Table, path: Path | Location) -> None:
    if isinstance(path, Location):  # one whole object: S3 has no rename, and needs none
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        write_atomic(path, sink.getvalue().to_pybytes())
        return
    with atomic_open(path) as f:
        pq.write_table(table, f)


# --- reading ----------------------------------------------------------------------------------------------------


def read_table(sweep_dir: str | Path) -> pa.Table:
    """All rows of a sweep as one Arrow table sorted by trial (SCHEMA's columns when there are none)."""
    sweep_dir = as_path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep directory not found: {sweep_dir}")
    files = sorted((sweep_dir / RESULTS_DIR).glob("trial_*.parquet"))  # temporaries start with '.'
    return _combine([_read_file(f) for f in files])


def _read_file(path: Path | Location) -> pa.Table:
    table = read_parquet(path)
    if "schema_version" not in table.column_names:
        raise ValueError(f"{path}: not a humanlike results file (no schema_version column)")
    versions = set(table.column("schema_version").to_pylist())
    if any(v is None or v > SCHEMA_VERSION for v in versions):
        raise ValueError(f"{path}: schema_version {max(v or 0 for v in versions)} is newer than this code's "
                         f"{SCHEMA_VERSION}; update humanlike")
    return table


def _combine(tables: list[pa.Table]) -> pa.Table:
    if not tables:
        return SCHEMA.empty_table()
    try:
        table = pa.concat_tables(tables, promote_options="permissive")  # int + float params -> float
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a parameter that is text in some rows: keep it as text
        params = {n for t in tables for n in t.column_names if n.startswith(PARAM_PREFIX)}
        table = pa.concat_tables([_params_as_text(t, params) for t in tables], promote_options="permissive")
    return table.sort_by([("trial", "ascending")])


def _params_as_text(table: pa.Table, names: set[str]) -> pa.Table:
    for name in names & set(table.column_names):
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, table.column(name).cast(pa.string()))
    return table


def read_results(sweep_dir: str | Path):
    """All trial rows of a sweep as a pandas DataFrame sorted by trial; empty (with SCHEMA's columns) if none.
    run_dir is absolute here: the stored relative path joined to where the sweep directory is now."""
    import pandas as pd

    from search.portable import absolute_run_dirs

    df = read_table(sweep_dir).to_pandas()
    if "guidance" in df.columns:  # rows before schema 4 were all sampled with the paper's rule
        rule = df["guidance_rule"] if "guidance_rule" in df.columns else pd.Series(None, index=df.index, dtype=object)
        df["guidance_rule"] = rule.where(rule.notna() | df["guidance"].isna(), "cfg")
    return absolute_run_dirs(df, sweep_dir)


def relative_run_dir(sweep_dir, row: Mapping[str, Any]) -> Mapping[str, Any]:
    """The row with its run_dir relative to the sweep directory when it lies inside it (search/portable.py)."""
    from search.portable import relative_to_sweep

    if not row.get("run_dir"):
        return row
    return {**row, "run_dir": relative_to_sweep(sweep_dir, row["run_dir"])}


def trained_rows(df):
    """The rows of trials that trained: without those that reused an earlier trial's result (reused_from, written
    by search/driver.py), which repeat it. Every row before schema 6 trained."""
    return df[df["reused_from"].isna()] if "reused_from" in df.columns else df


def read_any(path: str | Path):
    """A sweep directory's rows, or an exported Parquet file, as a DataFrame."""
    path = as_path(path)
    if path.is_dir():
        return read_results(path)
    return _read_file(path).to_pandas()


def export(sweep_dir: str | Path, out_path: str | Path) -> int:
    """Write every row of the sweep to one Parquet file (atomically); returns the number of rows."""
    table = read_table(sweep_dir)
    out = as_path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_table(table, out)
    return table.num_rows


# --- warm start ---------------------------------------------------------------------------------------------------


def finished_params(df, space) -> list[dict[str, Any]]:
    """The parameters of the COMPLETE rows of a results frame that lie in `space` (others are skipped: an
    earlier sweep may have searched another space), in trial order, without duplicates."""
    out: list[dict[str, Any]] = []
    for _, row in df[df["state"] == "COMPLETE"].iterrows():
        params = _params_in(row, space)
        if params and params not in out:
            out.append(params)
    return out


def _params_in(row, space) -> dict[str, Any] | None:
    """A result row's parameters, or None when they do not lie in `space`."""
    from search.errors import SweepError
    from search.space import Range, check_params, dims_by_name

    dims = dims_by_name(space)
    params = {}
    for name in space.param_names():
        value = row.get(f"{PARAM_PREFIX}{name}")
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        value = _plain(value)
        dim = dims.get(name)
        if isinstance(dim, Range) and dim.integer and isinstance(value, float) and value.is_integer():
            value = int(value)  # an int column promoted to float by a missing value
        params[name] = value
    try:
        check_params(space, params)
    except SweepError:
        return None
    return params


def warm_start_params(spec) -> list[dict[str, Any]]:
    """The configurations to enqueue before sampling: warm_start.configs, then the finished trials of each
    warm_start.parquet source (a sweep directory or an exported file); with warm_start.best = K only the K
    configurations of those sources nearest to people, their rows pooled (a configuration trained in several of
    them ranked by its mean distance; nearest_params). Duplicates are dropped. With sampler grid only the
    grid's own configurations are kept (the warm start then sets which of its points run first)."""
    import pandas as pd

    from search.space import grid_points

    points = grid_points(spec.space) if spec.sampler.name == "grid" else None
    out = [dict(c) for c in spec.warm_start.configs]
    frames = [read_any(source) for source in spec.warm_start.parquet]
    if spec.warm_start.best is None:
        chosen = [params for df in frames for params in finished_params(df, spec.space)]
    else:
        chosen = nearest_params(pd.concat(frames, ignore_index=True), spec.space, spec.warm_start.best, among=points,
                                objective=spec.objective)
    for params in chosen:
        if params not in out and (points is None or params in points):
            out.append(params)
    return out


def nearest_params(df, space, k: int, *, among: list[dict[str, Any]] | None = None,
                   objective: str = "distance") -> list[dict[str, Any]]:
    """The k configurations of a results frame nearest to the human point, nearest first, as the report ranks them
    (search.report.config_summary: COMPLETE rows that trained, a configuration trained with several seeds by its
    mean distance; ties by the first row); configurations outside `space` (or not in `among`, when given) are
    skipped. With objective 'pareto' (a two-objective sweep) the configurations are ranked by Pareto layer first
    (the front of the two deviations from the human point, of the configurations' mean points; then the front of
    what is left, and so on) and by distance within a layer, so the screen's whole front comes before any
    configuration it dominates."""
    from search.report import config_summary, pareto_layers
    from search.spec import objective_values

    summary = config_summary(df)
    params = [_params_in(row, space) for _, row in summary.iterrows()]
    summary = summary.assign(_params=params)[[bool(p) for p in params]] if params else summary
    keys = ["distance"]
    if objective == "pareto" and len(summary):
        values = [objective_values("pareto", originality=r["originality"], recognizability=r["recognizability"],
                                   human_originality=r["human_originality"],
                                   human_recognizability=r["human_recognizability"],
                                   normalization=r["normalization"] if isinstance(r.get("normalization"), str)
                                   else "relative") for _, r in summary.iterrows()]
        summary = summary.assign(_layer=pareto_layers(values))
        keys = ["_layer", "distance"]
    out: list[dict[str, Any]] = []
    for _, row in summary.sort_values(keys, kind="stable").iterrows():
        if (among is None or row["_params"] in among) and row["_params"] not in out:
            out.append(row["_params"])
    return out[:k]


# --- provenance -----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """`git describe --always --dirty` of the source tree, else the installed package version."""
    repo = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(repo), "describe", "--always", "--dirty", "--tags"],
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("humanlike")
    except PackageNotFoundError:
        return "unknown"


def peak_rss_mb() -> float:
    """Peak resident memory of this process and its finished children, MiB (Linux reports KiB)."""
    import resource

    kib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return kib / 1024.0
