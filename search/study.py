"""The Optuna study of a sweep: its durable storage, and how it is brought back in line with the result rows.

The study is the single source of truth of a sweep (which trials exist, with which parameters, in which state);
one driver process owns it at a time (`driver_lock`). Ask-and-tell drivers get no heartbeat from Optuna, so a
driver that dies leaves its in-flight trials RUNNING in the study forever (notes/ray_optuna.md section 3.3). The
next driver settles each of them before asking for anything new (`settle_stale`):

    its result row exists (the trial finished, the tell was lost)  ->  tell the row's state and values
    no row                                                         ->  run it again, same number and params

Order of writes everywhere: the row first, then the tell. So a trial that the study calls finished always has a
row, and `check_agreement` can demand exactly one row per trial with the same state.

The sweep directory also keeps the sweep file it runs (sweep.yaml): `sweep resume NAME` reads it, and a changed
file on `sweep run` may not change the shape of an existing sweep (`check_saved_spec`). Ray is not imported here.
"""
from __future__ import annotations

import contextlib
import fcntl
import math
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Mapping

import optuna
from optuna.trial import TrialState

from search.errors import SweepError
from search.storage import Location, as_path

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
JOURNAL = "study.journal"


def open_storage(spec):
    """The sweep's storage: a journal file (default: in the sweep directory; or storage: journal:PATH) or a
    database URL. A database that cannot be opened raises SweepError, its message free of the password."""
    from search.spec import journal_path, redact, resolve_storage

    url = resolve_storage(spec)
    if url is None:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        path = journal_path(spec)
        if not isinstance(path, Path):  # sweep_from_dict refuses it; a spec built by hand might not
            raise SweepError(f"storage: the study cannot be a journal file in {path}; use a database or journal:PATH")
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    try:
        return StudyDatabase(_with_driver(url), spec.storage)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy and the drivers raise many types, some quoting the URL
        raise SweepError(f"storage: cannot open the study database ({spec.storage}): "
                         f"{redact(f'{type(exc).__name__}: {exc}', url)}") from None


def _with_driver(url: str) -> str:
    """postgresql:// opens with psycopg 3 (the 'postgres' extra), whatever SQLAlchemy's default driver is."""
    return "postgresql+psycopg://" + url[len("postgresql://"):] if url.startswith("postgresql://") else url


class StudyDatabase(optuna.storages.RDBStorage):
    """The study's database, pickled as the sweep file's reference to it (env:VARNAME), never as its URL: Ray Tune
    pickles the searcher, and with it the study's storage, into its experiment directory (tuner.pkl,
    search_gen_state-*.json), which would otherwise hold the password. Unpickling reads the variable again.

    No heartbeat: it only works with study.optimize, and the driver settles stale trials itself."""

    def __init__(self, url: str, reference: str) -> None:
        super().__init__(url)
        self.reference = reference

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["url"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        ref = state["reference"]
        state["url"] = _with_driver(os.environ.get(ref[4:], "") if ref.startswith("env:") else ref)
        super().__setstate__(state)


def open_study(spec, storage=None) -> optuna.Study:
    """Create the sweep's study, or load it (sampler and pruner are rebuilt in every driver process)."""
    from search.samplers import make_pruner, make_sampler
    from search.spec import JOURNAL_PREFIX, journal_path

    if storage is None and (spec.storage or "").startswith(JOURNAL_PREFIX):
        repair_journal(journal_path(spec))  # driver_lock repairs only the default journal (one file per sweep)
    storage = storage if storage is not None else open_storage(spec)
    study = optuna.create_study(study_name=spec.name, storage=storage, sampler=make_sampler(spec),
                                pruner=make_pruner(spec), directions=spec.directions, load_if_exists=True)
    if len(study.directions) != len(spec.directions):
        raise SweepError(f"objective: the study {spec.name!r} has {len(study.directions)} objective(s), "
                         f"the sweep file asks for {spec.objective!r}")
    n = len(study.get_trials(deepcopy=False))
    if n:
        # A sampler seeded like the first session would replay its random start-up draws and propose the first
        # trials' parameters again; the seed moves with the study's size (still reproducible from the study).
        seed = replace(spec.sampler, seed=spec.sampler.seed + n)
        study.sampler = make_sampler(replace(spec, sampler=seed))
    return study


def load_study(spec) -> optuna.Study:
    """An existing study, read-only use (status, best): no sampler work, no driver lock needed."""
    from search.spec import journal_path

    journal = journal_path(spec)
    if journal is not None and not journal.is_file():
        raise FileNotFoundError(f"{journal}: no study yet (run the sweep first)")
    try:
        return optuna.load_study(study_name=spec.name, storage=open_storage(spec))
    except KeyError:
        raise FileNotFoundError(f"storage has no study named {spec.name!r} (run the sweep first)") from None


def state_counts(study: optuna.Study) -> dict[str, int]:
    counts = {s.name: 0 for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING,
                                  TrialState.WAITING)}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


RETRIED = "retried_failed"  # study user attr: FAIL trials run again by `sweep run --retry-failed` (not counted)


def n_finished(study: optuna.Study) -> int:
    """Finished trials that count towards n_trials (a FAIL trial requeued by --retry-failed does not)."""
    retried = set(study.user_attrs.get(RETRIED, ()))
    return sum(t.state in FINISHED and t.number not in retried for t in study.get_trials(deepcopy=False))


# --- rows <-> study -----------------------------------------------------------------------------------------------


def rows_by_trial(sweep_dir: str | Path) -> dict[int, dict[str, Any]]:
    """Every result row of a sweep as {trial number: row}."""
    from search.results import read_results

    sweep_dir = as_path(sweep_dir)
    if not sweep_dir.is_dir():
        return {}
    df = read_results(sweep_dir)
    return {int(r["trial"]): r for r in df.to_dict("records")}


def row_values(spec, row: Mapping[str, Any]) -> list[float] | None:
    """The objective value(s) a COMPLETE row gives the study, or None when they are missing or not finite."""
    values = [row.get("value_0")] + ([row.get("value_1")] if len(spec.directions) > 1 else [])
    if any(missing(v) or not math.isfinite(float(v)) for v in values):
        return None
    return [float(v) for v in values]


def finished_twin(study: optuna.Study, params: Mapping[str, Any], *, exclude: int) -> int | None:
    """The first COMPLETE trial of the study (other than `exclude`) with exactly these parameters: a sampler that
    chooses from lists (`choices`) may propose a configuration again, and the driver reuses its result."""
    params = dict(params)
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if t.number != exclude and t.params == params:
            return t.number
    return None


def tell_from_row(study: optuna.Study, spec, number: int, row: Mapping[str, Any]) -> TrialState:
    """Finish a RUNNING trial with what its row says. A COMPLETE row without usable values is rewritten as a FAIL
    row first (rows and study must agree), then told FAIL."""
    state = TrialState[row["state"]]
    if state == TrialState.COMPLETE:
        values = row_values(spec, row)
        if values is not None:
            study.tell(number, values)
            return state
        from search.results import write_trial_row

        state = TrialState.FAIL
        fixed = {k: v for k, v in row.items() if not missing(v)}
        fixed.update(state="FAIL", error="the trial finished without finite objective values "
                                         f"(value_0={row.get('value_0')!r}, value_1={row.get('value_1')!r})")
        write_trial_row(spec.dir(), fixed, space=spec.space)
    if state == TrialState.PRUNED and not missing(row.get("last_step")) and not missing(row.get("last_value")):
        _report_once(study, number, float(row["last_value"]), int(row["last_step"]))
    study.tell(number, state=state)
    return state


def missing(value: Any) -> bool:
    """None, NaN or NaT: what a row read back from Parquet holds for an empty cell."""
    import pandas as pd

    if value is None:
        return True
    return not isinstance(value, (list, dict)) and bool(pd.isna(value))


def _report_once(study: optuna.Study, number: int, value: float, step: int) -> None:
    """Record an intermediate value unless the step already has one (a relaunched trial reports again)."""
    frozen = study._storage.get_trial(study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number))
    if step not in frozen.intermediate_values and math.isfinite(value):
        study._storage.set_trial_intermediate_value(frozen._trial_id, step, value)


def settle_stale(study: optuna.Study, spec) -> tuple[list[optuna.trial.FrozenTrial], dict[str, int]]:
    """Tell every RUNNING trial that has a row; return the others (to run again) and what was told."""
    rows = rows_by_trial(spec.dir())
    relaunch, told = [], {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.number in rows:
            state = tell_from_row(study, spec, t.number, rows[t.number])
            told[state.name] = told.get(state.name, 0) + 1
        else:
            relaunch.append(t)
    return relaunch, told


def check_agreement(study: optuna.Study, sweep_dir: str | Path) -> list[str]:
    """Problems between the study and the rows: each finished trial has exactly one row with its state, and no
    row names a trial the study does not hold or still runs. Empty when they agree."""
    rows = rows_by_trial(sweep_dir)
    problems = []
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    for number, t in sorted(trials.items()):
        row = rows.get(number)
        if t.state in FINISHED and row is None:
            problems.append(f"trial {number}: {t.state.name} in the study but has no result row")
        elif t.state in FINISHED and row["state"] != t.state.name:
            problems.append(f"trial {number}: {t.state.name} in the study, {row['state']} in its row")
        elif t.state == TrialState.RUNNING:
            problems.append(f"trial {number}: still RUNNING in the study")
    for number in sorted(set(rows) - set(trials)):
        problems.append(f"trial {number}: has a result row but is not in the study")
    return problems


def enqueue_warm_start(study: optuna.Study, spec) -> int:
    """Enqueue the warm-start configurations once (skip_if_exists: a config already in the study is not
    enqueued again, so this is safe to call at every driver start). Returns how many were enqueued."""
    from search.results import warm_start_params

    before = len(study.get_trials(deepcopy=False))
    for params in warm_start_params(spec):
        study.enqueue_trial(params, skip_if_exists=True)
    return len(study.get_trials(deepcopy=False)) - before


def enqueue_initial_design(study: optuna.Study, spec) -> int:
    """Enqueue the sampler's initial design (search.samplers.initial_design) into a new study: one without
    trials and without a warm start (a warm start is the user's own first design). Returns how many."""
    from search.samplers import initial_design

    if spec.warm_start or study.get_trials(deepcopy=False):
        return 0
    points = initial_design(spec)
    for params in points:
        study.enqueue_trial(params)
    return len(points)


# --- the sweep file and its saved copy ---------------------------------------------------------------------------

SAVED_SPEC = "sweep.yaml"  # <sweep dir>/sweep.yaml: the sweep file as the sweep runs it (resume reads it)
# <sweep dir>/train_resolved.yaml: the training config the trials start from with the preset applied, every value
# written out, so that a preset changed by a later version of humanlike cannot silently train the rest of a sweep
# with another recipe (sweeps started before it existed are compared on their sweep file's train section only)
RESOLVED_TRAIN = "train_resolved.yaml"
# Settings that define what a sweep's trials are (with `train`): changing them needs a new sweep.
SHAPE_KEYS = ("objective", "space", "evaluation", "storage")
# Settings that may change between runs of one sweep: how many trials, how they run, what is seeded.
FREE_KEYS = ("n_trials", "max_concurrent", "resources", "pruner", "warm_start", "description", "root", "sampler")


def read_sweep_file(path: str | Path, overrides: Mapping[str, Any] | None = None):
    """(spec, raw): the validated SweepSpec (every mistake raises SweepError naming its key) and the mapping it
    was built from (the file with its name filled in and the overrides applied), which the sweep saves."""
    import copy

    import yaml

    from search.spec import load_sweep

    spec = load_sweep(path, overrides=overrides)
    from models.yamlfile import load_yaml

    raw = copy.deepcopy(load_yaml(as_path(path).read_text()) or {})
    raw.setdefault("name", as_path(path).stem)
    from models.config import set_dotted

    for dotted, value in (overrides or {}).items():
        set_dotted(raw, dotted, value)
    return spec, raw


def load_saved_spec(sweep_dir: str | Path):
    """The spec of an existing sweep from its saved copy (no dataset check: status and reports need no data)."""
    import yaml

    from search.spec import sweep_from_dict

    sweep_dir = as_path(sweep_dir)
    path = sweep_dir / SAVED_SPEC
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a sweep directory (run `humanlike sweep run FILE` first)")
    from models.yamlfile import load_yaml

    raw = load_yaml(path.read_text())
    raw["root"] = str(sweep_dir.parent)  # where it is now, even if it was moved
    raw["name"] = sweep_dir.name
    return sweep_from_dict(raw, check_data=False)


def check_saved_spec(spec) -> None:
    """Refuse a sweep file that changes an existing sweep's shape (SHAPE_KEYS, the training settings): its trials
    would no longer be comparable. n_trials may change (grow to extend a finished sweep), and so may the
    execution settings in FREE_KEYS and the sampler (e.g. random first, then TPE; but not to or from grid, whose
    trials claim grid points). Raises SweepError naming the key."""
    from search.errors import SweepError

    if not (spec.dir() / SAVED_SPEC).is_file():
        return
    old = load_saved_spec(spec.dir())

    def refuse(key: str, before: Any, now: Any) -> None:
        raise SweepError(f"{key}: the sweep {spec.name!r} in {spec.dir()} was started with {before!r}, the file "
                         f"now says {now!r}; give the sweep another name to search with other settings")

    for key in SHAPE_KEYS:
        if getattr(old, key) != getattr(spec, key):
            refuse("search" if key == "space" else key, getattr(old, key), getattr(spec, key))
    if (old.sampler.name == "grid") != (spec.sampler.name == "grid"):
        refuse("sampler.name", old.sampler.name, spec.sampler.name)
    if (spec.dir() / RESOLVED_TRAIN).is_file():
        from models.config import build_config, config_difference

        diff = config_difference(resolved_train(spec), build_config(spec.train))
        why = ""
        if diff and _train_difference(old.train, spec.train) is None:
            why = (f" (the sweep file did not change it: preset {spec.train.get('preset')!r} trains differently in "
                   "this version of humanlike; to go on with the old recipe, write the first value in the sweep "
                   "file's train section)")
    else:
        diff, why = _train_difference(old.train, spec.train), ""
    if diff:
        raise SweepError(f"train.{diff}; the sweep {spec.name!r} in {spec.dir()} was started with the first value"
                         f"{why}: give the sweep another name to train with other settings")


def resolved_train(spec):
    """The training config a sweep's trials start from: as stored when the sweep started (RESOLVED_TRAIN), else
    the sweep file's train section under today's presets (sweeps started before 2026-12-07)."""
    from models.config import build_config, config_from_dict
    from models.yamlfile import load_yaml

    path = spec.dir() / RESOLVED_TRAIN
    return config_from_dict(load_yaml(path.read_text())) if path.is_file() else build_config(spec.train)


def _train_difference(a: Mapping[str, Any], b: Mapping[str, Any]) -> str | None:
    from models.config import build_config, config_difference

    return config_difference(build_config(a), build_config(b))


def save_spec(spec, raw: Mapping[str, Any]) -> None:
    """Write the sweep's copy of its file (atomically); called under the driver lock after check_saved_spec."""
    import yaml

    from models.config import build_config
    from search.storage import write_atomic

    write_atomic(spec.dir() / SAVED_SPEC, yaml.safe_dump(dict(raw), sort_keys=False).encode())
    resolved = build_config(spec.train).to_dict()
    write_atomic(spec.dir() / RESOLVED_TRAIN, yaml.safe_dump(resolved, sort_keys=False).encode())


# --- one driver per sweep -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def driver_lock(sweep_dir: str | Path) -> Iterator[None]:
    """Hold <sweep dir>/driver.lock (flock: the kernel drops it when the process dies, even by SIGKILL), so two
    drivers never own one study. Also repairs what a killed driver may have left in the journal file.

    A sweep in a bucket is locked on this machine only (a file under $HUMANLIKE_SCRATCH keyed by its URI): an object
    store has no lock that dies with its holder. On a cluster the sweep's single driver is its Ray job."""
    path = _lock_path(sweep_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _try_flock(fd, fcntl.LOCK_EX, tries=10):  # `sweep status` may hold it for an instant
            other = path.read_text().partition("\n")[0].strip() or "?"
            raise SweepError(f"{sweep_dir}: another driver (pid {other}) is running this sweep; "
                             "wait for it or stop it first") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        repair_journal(path.parent / JOURNAL)
        yield
    finally:
        os.close(fd)


def _try_flock(fd: int, kind: int, *, tries: int = 1, wait_s: float = 0.05) -> bool:
    for attempt in range(tries):
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt + 1 < tries:
                time.sleep(wait_s)
    return False


def _lock_path(sweep_dir: str | Path) -> Path:
    """<sweep dir>/driver.lock; for a sweep in a bucket, its file under $HUMANLIKE_SCRATCH on this machine."""
    sweep_dir = as_path(sweep_dir)
    if isinstance(sweep_dir, Location):
        from search.storage import scratch_dir

        sweep_dir = scratch_dir(sweep_dir / "driver").parent
    return sweep_dir / "driver.lock"


def note_trials_at_once(sweep_dir: str | Path, n: int) -> None:
    """Record, in the driver lock this process holds, how many trials its Ray cluster holds at once, so that
    `sweep status` from another process divides its ETA by the same number (driver_trials_at_once)."""
    with open(_lock_path(sweep_dir), "a") as f:
        f.write(f"trials_at_once {int(n)}\n")


def driver_trials_at_once(sweep_dir: str | Path) -> int | None:
    """What the running driver recorded with note_trials_at_once; None when it has not (yet) or the lock is gone."""
    try:
        lines = _lock_path(sweep_dir).read_text().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        key, _, value = line.partition(" ")
        if key == "trials_at_once" and value.strip().isdigit() and int(value) > 0:
            return int(value)
    return None


def driver_running(sweep_dir: str | Path) -> bool:
    """Whether a driver on this machine holds the sweep's lock now (a shared lock taken and dropped at once; the
    driver's is exclusive). A driver that died, even by SIGKILL, holds nothing: its RUNNING trials are stale."""
    path = _lock_path(sweep_dir)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # never run here
        return False
    try:
        return not _try_flock(fd, fcntl.LOCK_SH)  # closing the descriptor drops the shared lock
    finally:
        os.close(fd)


def repair_journal(path: Path) -> None:
    """Undo what a driver killed inside an append may leave: a stale lock link and a torn last line.

    Only called under driver_lock: no other process writes the journal then (trials never touch the study).
    """
    lock = Path(f"{path}.lock")
    if lock.is_symlink() or lock.exists():
        lock.unlink()
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        data = f.seek(0) or f.read()
        f.truncate(data.rfind(b"\n") + 1)  # drop the torn line: it was never a complete record
