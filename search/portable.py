"""A sweep directory that can move: result rows name their trial's run directory relative to the sweep directory.

A row written as `run_dir: trials/00003/run` stays true when the sweep directory is copied to another machine,
renamed, or uploaded into a bucket; read_results joins it to wherever the directory is now, so reports and
`sweep best` show a path (or URI) that exists. Rows written before this change hold absolute paths: they are read
as they are, except that an absolute path that no longer exists but ends in the sweep's own trials/NNNNN/run is
shown under the sweep directory's present place.
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

_TRIAL_RUN = re.compile(r"(?:^|/)(trials/\d+/run)/?$")


def _is_absolute(text: str) -> bool:
    return text.startswith("/") or "://" in text


def relative_to_sweep(sweep_dir: Any, run_dir: Any) -> str:
    """run_dir relative to sweep_dir when it lies inside it (paths, or URIs of one bucket); else unchanged."""
    from search.storage import Location, as_path

    base, target = as_path(sweep_dir), as_path(str(run_dir))
    if isinstance(base, Location) and isinstance(target, Location):
        if (base.scheme, base.path.split("/")[0]) == (target.scheme, target.path.split("/")[0]):
            inside = PurePosixPath(target.path)
            if inside.is_relative_to(base.path):
                return str(inside.relative_to(base.path))
        return str(run_dir)
    if isinstance(base, Path) and isinstance(target, Path):
        for b, t in ((base, target), (base.resolve(), target.resolve())):
            if t.is_absolute() and t.is_relative_to(b):
                return t.relative_to(b).as_posix()
    return str(run_dir)


def absolute_run_dir(sweep_dir: Any, run_dir: Any) -> Any:
    """Where a row's run directory is now (for display and for opening it)."""
    from search.storage import Location, as_path

    if not isinstance(run_dir, str) or not run_dir:
        return run_dir
    base = as_path(sweep_dir)
    if not _is_absolute(run_dir):
        where = base / run_dir
        return str(where if isinstance(where, Location) else Path(where).resolve())
    old = _TRIAL_RUN.search(run_dir)
    if old and isinstance(base, Path) and not Path(run_dir).exists() and (base / old.group(1)).exists():
        return str((base / old.group(1)).resolve())  # an old absolute row of a sweep that has moved
    return run_dir


def absolute_run_dirs(df, sweep_dir):
    """The frame with every run_dir made absolute against sweep_dir (a new frame; rows without one unchanged)."""
    if "run_dir" not in df.columns or df.empty:
        return df
    df = df.copy()
    df["run_dir"] = [absolute_run_dir(sweep_dir, v) for v in df["run_dir"]]
    return df
