"""Where each running trial is (stage and epoch), how far the sweep has got, and about how long it still needs.

Two readers, one format. A trial writes <trial dir>/progress.json (atomically) every time it reports: at its start,
after every RAE and LDM epoch, and when training ends and the evaluation begins:

    {"trial": 3, "stage": "ldm", "epoch": 17, "epochs": 30, "rae_epochs": 4, "ldm_epochs": 30,
     "started_at": 1764662400.0, "updated_at": 1764662581.2}

The driver follows the same reports through Ray Tune and shows them (ProgressBoard): on a terminal a status line
it rewrites every few seconds; otherwise (a log file, a Ray job) a plain line every 30 s:

    progress: 2/6 finished, 2 running, ETA 7 min | trial 3: RAE 2/4 | trial 4: LDM 17/30

`humanlike sweep status` reads the files of the study's RUNNING trials (progress_lines), so a sweep running in
another terminal or on a cluster shows the same thing. Pure functions of (records, rows, clock) plus two small I/O
helpers; no Ray, no torch.
"""
from __future__ import annotations

import json
import sys
import time
from typing import Any, Callable, Mapping, TextIO

PROGRESS_FILE = "progress.json"
import os

# Plain progress lines at least this often (a terminal is redrawn every 2 s); HUMANLIKE_PROGRESS_EVERY_S overrides.
EVERY_S = float(os.environ.get("HUMANLIKE_PROGRESS_EVERY_S") or 30.0)
# Share of a trial's time in each stage when no finished trial of the sweep says better (the quickstart: RAE 117 s,
# LDM 112 s, evaluation 27 s; README, Performance).
DEFAULT_SHARES = {"rae": 0.46, "ldm": 0.44, "eval": 0.10}
STAGE_LABEL = {"start": "starting", "rae": "RAE", "ldm": "LDM", "eval": "evaluating"}


# --- the record a trial writes ------------------------------------------------------------------------------------


def record_for(number: int, stage: str, metrics: Mapping[str, Any], train: Mapping[str, Any],
               started_at: float, previous: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The progress record of a report (stage as models.train reports it), or None for a report that moves
    nothing ('rae_done' is followed by the first LDM epoch; 'done' is the trial's end). previous: the trial's
    last record, whose first epoch report ('since') is carried on: a trial continued from a checkpoint reports
    its first epoch far into its work, so its pace is measured from there, not from its start."""
    rae_epochs, ldm_epochs = int(train["rae"]["epochs"]), int(train["ldm"]["epochs"])
    if stage == "start":
        where = {"stage": "start", "epoch": 0, "epochs": rae_epochs}
    elif stage == "rae":
        where = {"stage": "rae", "epoch": int(metrics["epoch"]), "epochs": rae_epochs}
    elif stage == "ldm":
        epoch = int(metrics["epoch"])
        # After the last LDM epoch the trial samples and scores (no report until it ends): say so.
        where = ({"stage": "eval", "epoch": 0, "epochs": 0} if epoch >= ldm_epochs
                 else {"stage": "ldm", "epoch": epoch, "epochs": ldm_epochs})
    else:
        return None
    record = {"trial": int(number), **where, "rae_epochs": rae_epochs, "ldm_epochs": ldm_epochs,
              "started_at": float(started_at), "updated_at": time.time()}
    since = (previous or {}).get("since")
    if since is None and where["stage"] != "start":
        since = {"at": record["updated_at"], **where}
    if since is not None:
        record["since"] = since
    return record


def write_record(trial_dir, record: Mapping[str, Any]) -> None:
    """<trial dir>/progress.json, replaced atomically (a reader never sees half of it). Best effort: progress
    that cannot be written (a full disk, a flaky bucket) must not fail the trial."""
    from search.storage import write_atomic

    try:
        trial_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(trial_dir / PROGRESS_FILE, json.dumps(dict(record)).encode())
    except Exception:  # noqa: BLE001 - see the docstring
        pass


def read_record(trial_dir) -> dict[str, Any] | None:
    try:
        return json.loads((trial_dir / PROGRESS_FILE).read_text())
    except Exception:  # noqa: BLE001 - missing, or written by an older version: no progress to show
        return None


# --- what a record means ------------------------------------------------------------------------------------------


def describe(record: Mapping[str, Any]) -> str:
    """'RAE 2/4', 'LDM 17/30', 'evaluating', 'starting'."""
    label = STAGE_LABEL.get(record.get("stage"), str(record.get("stage")))
    if record.get("stage") in ("rae", "ldm"):
        return f"{label} {record['epoch']}/{record['epochs']}"
    return label


def shares_from_rows(df) -> dict[str, float]:
    """Each stage's share of a trial's time, from the sweep's COMPLETE rows (DEFAULT_SHARES without any)."""
    if df is None or df.empty or "wall_rae_s" not in df.columns:
        return dict(DEFAULT_SHARES)
    done = df[(df["state"] == "COMPLETE") & df["wall_rae_s"].notna() & df["wall_ldm_s"].notna()
              & df["wall_eval_s"].notna()]
    if done.empty:
        return dict(DEFAULT_SHARES)
    parts = {"rae": float(done["wall_rae_s"].sum()), "ldm": float(done["wall_ldm_s"].sum()),
             "eval": float(done["wall_eval_s"].sum())}
    total = sum(parts.values())
    return {k: v / total for k, v in parts.items()} if total > 0 else dict(DEFAULT_SHARES)


def fraction_done(record: Mapping[str, Any], shares: Mapping[str, float]) -> float:
    """How much of its work a running trial has done, 0..1, weighting each stage by its share of the time."""
    stage = record.get("stage")
    if stage == "rae":
        return shares["rae"] * record["epoch"] / max(1, record["epochs"])
    if stage == "ldm":
        return shares["rae"] + shares["ldm"] * record["epoch"] / max(1, record["epochs"])
    if stage == "eval":
        return shares["rae"] + shares["ldm"]
    return 0.0


def eta_seconds(*, finished: int, n_trials: int, running: Mapping[int, Mapping[str, Any]], concurrency: int,
                trial_s: float | None, shares: Mapping[str, float], now: float) -> float | None:
    """Seconds until n_trials are finished: the work left (the running trials' remainders plus the trials not
    started yet) times the time of one trial, over the trials that run at once. trial_s: the mean wall time of a
    finished trial; without one, each running trial's pace so far (elapsed / fraction done) stands in. None while
    nothing says how long a trial takes."""
    if trial_s is None:
        paces = [p for r in running.values() if (p := _pace(r, shares, now)) is not None]
        trial_s = sum(paces) / len(paces) if paces else None
    if trial_s is None:
        return None
    left = sum(1.0 - fraction_done(r, shares) for r in running.values())
    left += max(0, n_trials - finished - len(running))
    return left * trial_s / max(1, min(concurrency, max(1, n_trials - finished)))


def _pace(record: Mapping[str, Any], shares: Mapping[str, float], now: float) -> float | None:
    """Seconds a whole trial takes at this trial's pace: from its first epoch report to now when it has moved
    since, else from its start (a trial seen for less than MIN_PACE_S says nothing yet)."""
    done = fraction_done(record, shares)
    since = record.get("since")
    if since and (moved := done - fraction_done(since, shares)) > 0.02 and now - since["at"] >= MIN_PACE_S:
        return (now - since["at"]) / moved
    if done > 0.02 and now - record["started_at"] >= MIN_PACE_S:
        return (now - record["started_at"]) / done
    return None


MIN_PACE_S = 5.0


def summary(*, finished: int, n_trials: int, running: Mapping[int, Mapping[str, Any]], concurrency: int,
            trial_s: float | None, shares: Mapping[str, float], now: float) -> str:
    """'2/6 finished, 2 running, ETA 7 min | trial 3: RAE 2/4 | trial 4: LDM 17/30'. Trials beyond the `concurrency`
    the cluster has room for that have not reported yet are shown as waiting (for a CPU or GPU), not running."""
    eta = eta_seconds(finished=finished, n_trials=n_trials, running=running, concurrency=concurrency,
                      trial_s=trial_s, shares=shares, now=now)
    waiting = waiting_for_resources(running, concurrency)
    head = f"{finished}/{n_trials} finished, {len(running) - len(waiting)} running"
    if waiting:
        head += f", {len(waiting)} waiting for resources"
    head += f", ETA {_duration(eta)}"
    return " | ".join([head] + [f"trial {n}: {'waiting' if n in waiting else describe(r)}"
                                for n, r in sorted(running.items())])


def waiting_for_resources(running: Mapping[int, Mapping[str, Any]], concurrency: int) -> set[int]:
    """The trials Tune has asked for beyond the `concurrency` the cluster holds: the last-started of those that
    have not reported yet (Tune starts them in order as resources free up)."""
    excess = len(running) - max(1, concurrency)
    if excess <= 0:
        return set()
    idle = sorted((n for n, r in running.items() if r.get("stage") == "start"), reverse=True)
    return set(idle[:excess])


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown yet"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def mean_trial_s(df) -> float | None:
    if df is None or df.empty or "wall_total_s" not in df.columns:
        return None
    done = df[(df["state"] == "COMPLETE") & df["wall_total_s"].notna()]
    return float(done["wall_total_s"].mean()) if not done.empty else None


# --- `humanlike sweep status` -------------------------------------------------------------------------------------


def progress_lines(spec, study, df, *, now: float | None = None, driver: bool | None = None) -> list[str]:
    """The status command's view of a running sweep: the same summary the driver prints, from the trials'
    progress files (the study says which trials run), with how long ago each trial last reported. When no driver
    holds the sweep (driver False; None: ask its lock), the study's RUNNING trials are what a stopped driver left:
    they are shown as stopped, where they stopped, with no ETA."""
    from optuna.trial import TrialState

    from search.study import driver_running, driver_trials_at_once, n_finished
    from search.trial import trial_dir

    now = time.time() if now is None else now
    running = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        running[t.number] = read_record(trial_dir(spec.dir(), t.number)) or {
            "trial": t.number, "stage": "start", "epoch": 0, "epochs": 0,
            "started_at": t.datetime_start.timestamp() if t.datetime_start else now, "updated_at": None}
    if not running:
        return []
    if driver is None:
        driver = driver_running(spec.dir())
    if not driver:
        lines = [f"progress: stopped, no driver is running this sweep on this machine; {n_finished(study)}/"
                 f"{spec.n_trials} finished, {len(running)} stopped mid-trial (they continue from their checkpoints "
                 f"on `{spec.resume_command()}`)"]
        for n, r in sorted(running.items()):
            age = f", last report {_duration(now - r['updated_at'])} ago" if r.get("updated_at") else ""
            lines.append(f"  trial {n}: stopped at {describe(r)}{age}")
        return lines
    # The trials the driver's cluster holds at once (it records them in its lock), else the sweep's max_concurrent.
    concurrency = driver_trials_at_once(spec.dir()) or spec.max_concurrent
    lines = ["progress: " + summary(finished=n_finished(study), n_trials=spec.n_trials, running=running,
                                    concurrency=concurrency, trial_s=mean_trial_s(df),
                                    shares=shares_from_rows(df), now=now)]
    for n, r in sorted(running.items()):
        age = f"last report {_duration(now - r['updated_at'])} ago" if r.get("updated_at") else "no report yet"
        lines.append(f"  trial {n}: {describe(r)}, running for {_duration(now - r['started_at'])}, {age}")
    return lines


# --- the driver's display -----------------------------------------------------------------------------------------


class ProgressBoard:
    """The driver's view of its running trials, fed by their Tune reports. On a terminal (live=True) a status line
    rewritten at most every `redraw_s` seconds, cleared before each of the driver's own lines; otherwise a plain
    'progress: ...' line through `echo` every `every_s` seconds. Single-threaded: Tune's loop calls it."""

    def __init__(self, *, n_trials: int, concurrency: int, finished: Callable[[], int], rows: Callable[[], Any],
                 echo: Callable[[str], None], live: bool = False, every_s: float = EVERY_S,
                 redraw_s: float = 2.0, stream: TextIO | None = None) -> None:
        self.n_trials, self.concurrency, self.finished, self.rows = n_trials, concurrency, finished, rows
        # The stream is looked up when written (Tune pickles the searcher, and with it this board: a terminal or a
        # captured stdout cannot be pickled).
        self._echo, self.live, self._stream = echo, live, stream
        self.every_s = every_s if not live else redraw_s
        self.running: dict[int, dict[str, Any]] = {}
        self.last_shown = time.monotonic()
        self.trial_s: float | None = None
        self.shares = dict(DEFAULT_SHARES)
        self._status_shown = False
        self.refresh_estimates()

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_stream": None}

    def refresh_estimates(self) -> None:
        try:
            df = self.rows()
        except Exception:  # noqa: BLE001 - no rows yet, or a row being replaced: keep the last estimates
            return
        self.trial_s, self.shares = mean_trial_s(df), shares_from_rows(df)

    def start(self, number: int, train: Mapping[str, Any]) -> None:
        self.running[number] = record_for(number, "start", {}, train, time.time())

    def report(self, number: int, stage: str, metrics: Mapping[str, Any], train: Mapping[str, Any]) -> None:
        current = self.running.get(number)
        started = current["started_at"] if current else time.time()
        record = record_for(number, stage, metrics, train, started, previous=current)
        if record is not None:
            self.running[number] = record

    def end(self, number: int) -> None:
        self.running.pop(number, None)
        self.refresh_estimates()

    def line(self) -> str:
        return "progress: " + summary(finished=self.finished(), n_trials=self.n_trials, running=self.running,
                                      concurrency=self.concurrency, trial_s=self.trial_s, shares=self.shares,
                                      now=time.time())

    def tick(self) -> None:
        """Called on every turn of Tune's loop: show the state when it is due."""
        if not self.running or time.monotonic() - self.last_shown < self.every_s:
            return
        self.last_shown = time.monotonic()
        if self.live:
            width = 160
            self.stream.write("\r\033[K" + self.line()[:width])
            self.stream.flush()
            self._status_shown = True
        else:
            self._echo(self.line())

    def echo(self, text: str) -> None:
        """The driver's own lines: on a terminal the status line is cleared first and drawn again after."""
        if self.live and self._status_shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._status_shown = False
        self._echo(text)
        if self.live and self.running:
            self.last_shown = 0.0  # redraw at the next tick

    def close(self) -> None:
        if self.live and self._status_shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
