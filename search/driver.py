"""The sweep driver: the Optuna study chooses, Ray Tune executes, every trial ends as a study state and one row.

Why not OptunaSearch + Tuner.restore (notes/ray_optuna.md 2b, 3.3): restore_errored crashes with a KeyError, a
restored searcher and a durable study disagree after a kill (UpdateFinishedTrialError), and a fresh Tuner on the
same study leaves zombie RUNNING trials. So here the durable state is only (a) the study and (b) the trial
directories and result rows; Tune's experiment directory is disposable: every driver run builds a new Tuner in
<sweep dir>/tune/<session> and never restores one.

    run_sweep
      preflight                   before Ray and before anything is written (search/preflight.py): the dataset
                                  loads, the critics load and fit it, one trial fits on the embedded Ray
      driver_lock                 one driver per sweep (search/study.py); check_saved_spec, save_spec
      settle_stale                RUNNING trials of a dead driver: tell from their row, or run them again
      Tuner(fit)                  StudySearcher.suggest: stale trials first (same number and params), then
                                  study.ask() (enqueued warm starts come first there) until n_trials are finished
                                  or in flight;  a configuration that finished already is not trained again
                                  (_reuse: a row naming the earlier trial, its value told), one being trained
                                  waits for that trial (waiting);  PruneStopper: Optuna's pruner on the
                                  'rae_done' / 'ldm' reports
      on_trial_complete           the row exists (written by the trial) -> tell it;  pruned -> PRUNED row, tell;
                                  Ray error -> FAIL row, tell;  stopped by SIGINT/SIGTERM -> nothing: RUNNING stays
      check_agreement             one row per trial, same state (a warning if not)

A trial whose worker fails (a lost node, CUDA out of memory: search/gpu.py) is started again by Tune's FailureConfig,
at most MAX_RETRIES times, and continues from its last epoch checkpoint; the driver echoes each retry and the
trial's row counts them (retries, oom_retries). After the last retry the driver records it as FAIL.

A run whose first FAIL_FAST trials all fail with one identical error stops early (a broken environment would
otherwise use up the trial budget); single failures are data and the sweep goes on.

Signals: the first SIGINT or SIGTERM stops launching and stops the running trials at once (their checkpoints stay:
the next run continues them; Tune gives a stopping trial up to 10 s, and one that finishes in that time writes
its row, which the next run settles); a second SIGINT aborts. SIGKILL needs nothing: the next run settles.
`ray job stop` sends SIGTERM (RAY_JOB_STOP_SIGNAL) and SIGKILL after RAY_JOB_STOP_WAIT_TIME_S (default 3 s):
either way the study and the epoch checkpoints hold the state, and submitting the job again continues the sweep.

Inside a Ray job (`ray job submit`) the driver joins the job's cluster without --address: starting a second Ray
there would run every trial on the head.
"""
from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import optuna
from optuna.trial import TrialState
from ray.tune import Callback
from ray.tune.search import Searcher
from ray.tune.stopper import Stopper

from search.study import (
    check_agreement, check_saved_spec, driver_lock, enqueue_initial_design, enqueue_warm_start, n_finished,
    note_trials_at_once, open_study, save_spec, settle_stale, state_counts, tell_from_row,
)
from search.trial import base_row, pruning_value, run_trial, trial_config

Echo = Callable[[str], None]
# Columns of a row that describe the run that produced it, not the configuration's result: a reused row leaves them
# empty (with every wall_* column), so that costs, throughput and ETAs count only trials that ran.
_NOT_REUSED = frozenset({"schema_version", "trial", "started_at", "finished_at", "node", "ray_node", "retries",
                         "oom_retries", "peak_rss_mb", "last_step", "last_value", "error", "reused_from"})
FAIL_FAST = 3  # the first trials of a driver run that, failing with one identical error, stop the run
MAX_RETRIES = 3  # restarts of a trial whose worker failed (node lost, out of GPU memory) before it is a FAIL


@dataclass
class SweepOutcome:
    counts: dict[str, int]  # study trials by state at the end
    interrupted: bool  # stopped by SIGINT/SIGTERM before the sweep was done
    problems: list[str]  # study/rows disagreements (empty when they agree)
    ran: int = 0  # trials that ended during this driver run
    settled: dict[str, int] = field(default_factory=dict)  # stale trials told from their rows at start
    aborted: str | None = None  # why the driver stopped early on its own (every trial failing the same way)
    reused: int = 0  # of `ran`, trials finished with an earlier trial's result (a configuration proposed again)


# --- the Ray side: the trainable ----------------------------------------------------------------------------------


def tune_trainable(config: dict[str, Any]) -> None:
    """Ray Tune function trainable: run_trial, with its stage reports mapped to ray.tune.report (ray.train.report
    raises inside Tune). The last report carries stage 'done' and the row's state: the searcher only treats a
    trial as finished when it sees it."""
    from ray import tune

    from search.progress import record_for, write_record
    from search.trial import trial_dir

    where, started = trial_dir(config["sweep_dir"], config["trial"]), time.time()
    last: dict[str, Any] = {}

    def progress(stage: str, metrics: dict[str, Any]) -> None:  # <trial dir>/progress.json for `sweep status`
        record = record_for(config["trial"], stage, metrics, config["train"], started, previous=last)
        if record is not None:
            last.clear()
            last.update(record)
            write_record(where, record)

    def reporter(stage: str, metrics: dict[str, Any]) -> None:
        progress(stage, metrics)
        tune.report({"stage": stage, **{k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}})

    progress("start", {})

    row = run_trial(config, reporter)
    tune.report({"stage": "done", "state": row["state"], "trial": row["trial"]})


# --- the Optuna side: searcher, stopper, error catalog ------------------------------------------------------------


@dataclass
class _Live:
    number: int
    trial: optuna.Trial
    config: dict[str, Any]
    pruned: bool = False
    last: tuple[int, float] | None = None
    started: float = field(default_factory=time.time)
    retries: int = 0  # restarts after a worker failure
    oom_retries: int = 0  # ... of which out of GPU memory


class StudySearcher(Searcher):
    """Ask-and-tell on the durable study for Tune. It keeps no state that matters after the process ends (the study
    has it all), so save() writes nothing and a Tune experiment is never restored from it."""

    def __init__(self, study: optuna.Study, spec, raw_spec: Mapping[str, Any], relaunch: list, *,
                 echo: Echo = print) -> None:
        super().__init__(metric=None, mode=None)
        self.study, self.spec, self.raw, self.echo = study, spec, dict(raw_spec), echo
        self.pending = list(relaunch)  # stale RUNNING trials of a dead driver, oldest first
        self.live: dict[str, _Live] = {}  # Tune trial id -> the study trial it runs
        self.stopping = False  # set by SIGINT/SIGTERM or abort: launch nothing more, stop what runs
        self.signalled = False  # stopping because of a signal (not an abort)
        self.aborted: str | None = None
        self.ended: dict[str, int] = {}
        self.reused = 0  # trials finished with an earlier trial's result (_reuse), counted in ended too
        # Trials whose configuration a running trial (the twin) is training: number -> (trial, params, twin).
        # When the twin ends they reuse its result, or (it failed, was pruned) move to `ready` and train.
        self.waiting: dict[int, tuple[optuna.Trial, dict, int]] = {}
        self.ready: list[tuple[optuna.Trial, int, dict, str]] = []
        self.first_ends: list[tuple[str, str]] = []  # (state, error) of the first trials that end in this run
        self.threads = max(1, int(spec.resources["cpu"]))  # torch threads = the trial's cpu share
        self.pruning = spec.pruner["name"] != "none"
        self.tune_trials: dict[str, Any] = {}  # Tune Trial objects, filled by TrialCatalog (error files)
        self.board = None  # search.progress.ProgressBoard, set by _fit

    def suggest(self, trial_id: str):
        """Tune asks whenever a slot is free: trials whose twin did not complete, stale trials, then study.ask()
        (which hands out enqueued warm-start trials before sampling) while finished + in flight + waiting <
        n_trials. A proposed configuration that finished already is reused and one that a running trial trains
        waits for it; the loop then asks again, so the free slot goes to a configuration that needs training."""
        if self.stopping:
            return None
        from search.space import suggest

        while True:  # until a configuration to train (one that finished already is reused, not trained again)
            if self.ready:  # waited for a twin that then did not complete: trained after all
                trial, number, params, what = self.ready.pop(0)
            elif self.pending:
                frozen = self.pending.pop(0)
                trial = optuna.trial.Trial(self.study, frozen._trial_id)
                # Suggesting again returns the values the trial holds and samples only what it lacks: a driver
                # killed between study.ask() and the last suggestion left a RUNNING trial with some or no parameters.
                number, params = frozen.number, suggest(trial, self.spec.space)
                what = "continuing (left RUNNING by an earlier driver)"
            elif n_finished(self.study) + len(self.live) + len(self.waiting) < self.spec.n_trials:
                trial = self.study.ask()
                number, params = trial.number, suggest(trial, self.spec.space)
                what = "start"
            else:
                return Searcher.FINISHED if not self.live and not self.waiting else None
            if self._reuse(number, params):
                continue
            twin = next((w.number for w in self.live.values() if w.config.get("params") == dict(params)), None)
            if twin is None:
                break
            self.waiting[number] = (trial, dict(params), twin)  # trained once: by the twin, which runs now
            self.echo(f"trial {number}: {_fmt(params)} is what trial {twin} is training now: waits for its result "
                      "instead of training it too")
        self.echo(f"trial {number}: {what} {_fmt(params)}")
        try:
            config = trial_config(self.spec, self.raw, number, params, threads=self.threads)
        except Exception as exc:  # noqa: BLE001 - a configuration that cannot be built fails without running
            self._record(number, {"params": params}, "FAIL", f"{type(exc).__name__}: {exc}", None)
            return None
        self.live[trial_id] = _Live(number=number, trial=trial, config=config)
        if self.board is not None:
            self.board.start(number, config["train"])
        return config

    def should_stop(self, trial_id: str, result: Mapping[str, Any]) -> bool:
        """PruneStopper calls this on every report before anything else sees it: record the intermediate value
        in the study (once per step: a continued trial reports its stages again) and ask the pruner."""
        live = self.live.get(trial_id)
        if live is not None and self.board is not None:
            self.board.report(live.number, result.get("stage", ""), result, live.config["train"])
        found = pruning_value(result.get("stage", ""), result) if live is not None else None
        if found is None or self.stopping:
            return False
        step, value = found
        live.last = (step, value)
        if len(self.spec.directions) > 1:
            return False  # Optuna neither records intermediate values nor prunes in multi-objective studies
        if step not in self.study._storage.get_trial(live.trial._trial_id).intermediate_values:
            live.trial.report(value, step)
        # Not after the last LDM epoch: the training is paid for, and only the evaluation gives the real value.
        last_epoch = step >= live.config["train"]["ldm"]["epochs"]
        if self.pruning and not last_epoch and live.trial.should_prune():
            live.pruned = True
            self.echo(f"trial {live.number}: pruned at step {step} (value {value:.4g})")
            return True
        return False

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        live = self.live.pop(trial_id, None)
        if live is None:
            return
        if self.board is not None:
            self.board.end(live.number)
        if error:  # the worker failed beyond FailureConfig's retries (an exception in run_trial is a FAIL row)
            self._record(live.number, live.config, "FAIL", self._ray_error(trial_id), live.last, live.started)
        elif live.pruned:
            step, value = live.last
            self._record(live.number, live.config, "PRUNED",
                         f"pruned by the {self.spec.pruner['name']} pruner at step {step} (value {value:.6g})",
                         live.last, live.started)
        elif result is not None and result.get("stage") == "done":
            self._tell_from_row(live)
        # else: stopped by a signal, or removed while pending: it stays RUNNING and the next run continues it.
        self._release_waiting(live.number)

    def _release_waiting(self, twin: int) -> None:
        """The trials that waited for `twin` reuse its result if it completed, else they train (ready). While the
        driver stops they stay RUNNING in the study, and the next run settles them the same way."""
        if self.stopping:
            return
        for number, (trial, params, of) in list(self.waiting.items()):
            if of == twin:
                del self.waiting[number]
                if not self._reuse(number, params):
                    self.ready.append((trial, number, params, f"start (trial {twin}, the same configuration, "
                                                              "did not complete)"))

    def save(self, checkpoint_path: str) -> None:
        pass  # nothing to save: the study is the state

    def restore(self, checkpoint_path: str) -> None:
        raise NotImplementedError("sweeps are never restored from a Tune experiment; run the driver again")

    def _tell_from_row(self, live: _Live) -> None:
        from search.results import read_any, trial_path

        path = trial_path(self.spec.dir(), live.number)
        if not path.is_file():  # run_trial writes the row before it returns; recorded rather than lost
            self._record(live.number, live.config, "FAIL", "the trial ended without a result row", live.last,
                         live.started)
            return
        row = read_any(path).to_dict("records")[0]
        state = tell_from_row(self.study, self.spec, live.number, row)
        self._ended(live.number, state.name, row)

    def _reuse(self, number: int, params: Mapping[str, Any]) -> bool:
        """When a trial's configuration finished already in this sweep (a sampler choosing from lists proposes one
        again: TPE does, to exploit it), finish the trial with that result instead of training it again: a row
        that copies the earlier one's and names it (reused_from; no costs, no node), then the same value(s) told
        to the study, so that the sampler's model sees it. Row first, as everywhere: a driver killed between the
        two is settled from the row on the next run. False when there is no such trial (or no usable row)."""
        from search.results import read_any, trial_path, write_trial_row
        from search.study import finished_twin, missing, row_values

        twin = finished_twin(self.study, params, exclude=number)
        path = None if twin is None else trial_path(self.spec.dir(), twin)
        if path is None or not path.is_file():
            return False
        earlier = read_any(path).to_dict("records")[0]
        if earlier.get("state") != "COMPLETE" or row_values(self.spec, earlier) is None:
            return False
        row = {k: v for k, v in earlier.items()
               if k not in _NOT_REUSED and not k.startswith("wall_") and not missing(v)}
        now = time.time()
        row.update(trial=number, reused_from=twin, started_at=now, finished_at=now)
        write_trial_row(self.spec.dir(), row, space=self.spec.space)
        tell_from_row(self.study, self.spec, number, row)
        self.reused += 1
        self.ended["COMPLETE"] = self.ended.get("COMPLETE", 0) + 1
        point = f"distance {row['distance']:.4g}; " if "distance" in row else ""
        self.echo(f"trial {number}: {_fmt(params)} finished already as trial {twin}: its result reused, nothing "
                  f"trained ({point}{n_finished(self.study)}/{self.spec.n_trials} finished)")
        return True

    def _record(self, number: int, config: Mapping[str, Any], state: str, reason: str, last,
                started: float | None = None) -> None:
        """Write the row of a trial that could not write its own, then tell the study (row first, always)."""
        from search.results import write_trial_row

        if "train" in config:
            row = base_row(self.spec, config)
        else:
            row = {"sweep": self.spec.name, "trial": number, "params": config["params"],
                   "objective": self.spec.objective}
        row.update(state=state, error=reason, last_step=last[0] if last else None,
                   last_value=last[1] if last else None, finished_at=time.time(),
                   retries=config.get("retries"), oom_retries=config.get("oom_retries"))
        if started is not None:
            row.update(started_at=started, wall_total_s=time.time() - started)
        write_trial_row(self.spec.dir(), row, space=self.spec.space)
        self.study.tell(number, state=TrialState[state])
        self._ended(number, state, row)

    def _ended(self, number: int, state: str, row: Mapping[str, Any]) -> None:
        self.ended[state] = self.ended.get(state, 0) + 1
        if len(self.first_ends) < FAIL_FAST:
            self.first_ends.append((state, str(row.get("error") or "")))
            states, errors = {s for s, _ in self.first_ends}, {e for _, e in self.first_ends}
            if len(self.first_ends) == FAIL_FAST and states == {"FAIL"} and len(errors) == 1:
                # The same error every time is the environment (data, critics, disk), not the configurations:
                # stop before it uses up the sweep's trial budget.
                self.aborted = f"the first {FAIL_FAST} trials all failed with: {errors.pop()}"
                self.stopping = True
        if state == "COMPLETE":
            detail = " ".join(f"{k} {row[k]:.4g}" for k in ("originality", "recognizability", "distance")
                              if row.get(k) is not None)
        else:
            detail = row.get("error") or ""
        self.echo(f"trial {number}: {state} {detail} ({n_finished(self.study)}/{self.spec.n_trials} finished)")

    def on_retry(self, tune_trial) -> None:
        """Tune is starting a trial again after its worker failed (FailureConfig): echo why, and count it in the
        config the restarted trial receives, so that its row records it."""
        from search.gpu import mentions_out_of_memory

        live = self.live.get(tune_trial.trial_id)
        if live is None:
            return
        reason = _last_failure(getattr(tune_trial, "error_file", None))
        oom = mentions_out_of_memory(reason)
        live.retries += 1
        live.oom_retries += int(oom)
        # Tune starts the trial again with tune_trial.config (tests/cluster/test_oom_retry.py checks it).
        for config in {id(c): c for c in (tune_trial.config, live.config)}.values():  # Tune may hold a copy
            config.update(retries=live.retries, oom_retries=live.oom_retries)
        what = "ran out of GPU memory" if oom else "lost its worker"
        self.echo(f"trial {live.number}: {what}; retry {live.retries}/{MAX_RETRIES} from its last checkpoint "
                  f"({reason[:200]})")

    def _ray_error(self, trial_id: str) -> str:
        tune_trial = self.tune_trials.get(trial_id)
        path = getattr(tune_trial, "error_file", None) if tune_trial is not None else None
        if path and Path(path).is_file():
            lines = [ln for ln in Path(path).read_text().splitlines() if ln.strip()]
            return ("Ray trial error: " + " | ".join(lines[-3:]))[:2000]
        return "Ray trial error (the trial's worker failed; see the Tune log under the sweep's tune/ directory)"


class PruneStopper(Stopper):
    """Tune consults the stopper before the searcher sees a result: it carries the pruner's decision, and the
    driver's stop request (stop_all) after a signal."""

    def __init__(self, searcher: StudySearcher) -> None:
        self.searcher = searcher

    def __call__(self, trial_id: str, result: dict) -> bool:
        return self.searcher.should_stop(trial_id, result)

    def stop_all(self) -> bool:
        return self.searcher.stopping


class TrialCatalog(Callback):
    """Lets the searcher read a failed trial's error file (Tune calls the searcher before its callbacks)."""

    def __init__(self, searcher: StudySearcher) -> None:
        self.searcher = searcher

    def on_trial_start(self, iteration, trials, trial, **info):
        self.searcher.tune_trials[trial.trial_id] = trial

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.searcher.on_retry(trial)

    def on_step_end(self, iteration, trials, **info):
        if self.searcher.board is not None:
            self.searcher.board.tick()  # progress every few seconds (terminal) or every 30 s (plain lines)


# --- the driver ----------------------------------------------------------------------------------------------------


def run_sweep(spec, raw_spec: Mapping[str, Any], *, address: str | None = None, num_cpus: int | None = None,
              num_gpus: int | None = None, retry_failed: bool = False, echo: Echo = print, live: bool = False,
              progress_every_s: float | None = None) -> SweepOutcome:
    """Run or resume a sweep until the study holds spec.n_trials finished trials (or a signal stops it).
    retry_failed: run every FAIL trial's configuration again, the failures no longer counting towards n_trials.
    live: the output is a terminal (a status line redrawn in place); else plain progress lines every
    progress_every_s seconds (default search.progress.EVERY_S)."""
    import ray

    from search.preflight import job_env_vars, preflight

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    embedded = address is None and not ray.is_initialized() and job_env_vars() is None
    # Before Ray starts and before the sweep directory is touched: data, critics, resources (search/preflight.py).
    preflight(spec, embedded=embedded, num_cpus=num_cpus, num_gpus=num_gpus, echo=echo)
    with driver_lock(spec.dir()):
        check_saved_spec(spec)
        save_spec(spec, raw_spec)
        study = open_study(spec)
        if retry_failed and (n := requeue_failed(study)):
            echo(f"retry: {n} failed configurations enqueued again; those failures no longer count towards n_trials")
        if enqueue_warm_start(study, spec):
            echo(f"warm start: {len(study.get_trials(states=(TrialState.WAITING,)))} configurations enqueued")
        elif n := enqueue_initial_design(study, spec):
            echo(f"initial design: every family once ({n} configurations) before the sampler proposes")
        _end_orphans(spec, echo)  # the Ray processes a SIGKILLed driver of this sweep left on this machine
        relaunch, settled = settle_stale(study, spec)
        if settled:
            echo("settled from result rows: " + ", ".join(f"{n} {s}" for s, n in settled.items()))
        todo = len(relaunch) + max(0, spec.n_trials - n_finished(study))
        searcher = None
        if todo:
            echo(f"sweep {spec.name}: {n_finished(study)}/{spec.n_trials} finished, {len(relaunch)} to continue, "
                 f"{max(0, spec.n_trials - n_finished(study) - len(relaunch))} new; results in {spec.dir()}")
            searcher = _fit(study, spec, raw_spec, relaunch, address=address, num_cpus=num_cpus,
                            num_gpus=num_gpus, echo=echo, live=live, progress_every_s=progress_every_s)
            if searcher.aborted:
                echo(f"stopped: {searcher.aborted}")
        interrupted = searcher is not None and searcher.stopping
        problems = [] if interrupted else check_agreement(study, spec.dir())
        for problem in problems:
            echo(f"warning: {problem}")
        return SweepOutcome(counts=state_counts(study), interrupted=interrupted and not searcher.aborted,
                            problems=problems, ran=sum(searcher.ended.values()) if searcher else 0,
                            settled=settled, aborted=searcher.aborted if searcher else None,
                            reused=searcher.reused if searcher else 0)


def requeue_failed(study: optuna.Study) -> int:
    """Enqueue the parameters of every FAIL trial not requeued before, and record their numbers in the study
    (search.study.RETRIED), so that n_finished no longer counts them: how trials lost to an environment problem
    (data, critics, disk) are won back without renaming the sweep. Their rows stay, as FAIL. Returns how many."""
    from search.study import RETRIED

    done = set(study.user_attrs.get(RETRIED, []))
    failed = [t for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if t.number not in done]
    for t in failed:
        study.enqueue_trial(dict(t.params))
    if failed:
        study.set_user_attr(RETRIED, sorted(done | {t.number for t in failed}))
    return len(failed)


def _fit(study, spec, raw_spec, relaunch, *, address, num_cpus, num_gpus, echo, live=False,
         progress_every_s=None) -> StudySearcher:
    # Tune's own loggers and SIGINT handler are off: the study and the rows are the record, and the driver's
    # handler below decides what a signal means.
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the new engine prints its tables even at verbose=0
    import logging

    import ray
    from ray import tune

    from search.storage import tune_storage

    # Tune's end-of-run analysis looks for the logger files switched off above; its warnings are noise here.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    from search.progress import EVERY_S, ProgressBoard
    from search.results import read_results

    board = ProgressBoard(n_trials=spec.n_trials, concurrency=spec.max_concurrent, finished=lambda: n_finished(study),
                          rows=lambda: read_results(spec.dir()), echo=echo, live=live,
                          every_s=progress_every_s or EVERY_S)
    echo = board.echo  # the driver's own lines clear the terminal's status line first
    stop_ray = _init_ray(address, num_cpus, num_gpus, record_dir=_record_dir(spec))
    board.concurrency = _trials_at_once(spec, echo)
    note_trials_at_once(spec.dir(), board.concurrency)  # `sweep status` from another process reads it
    searcher = StudySearcher(study, spec, raw_spec, relaunch, echo=echo)
    searcher.board = board
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def stop(signum, frame):
        if searcher.signalled and signum == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl+C: abort now
        searcher.stopping = searcher.signalled = True
        echo(f"{signal.Signals(signum).name}: stopping; running trials keep their checkpoints and continue on the "
             "next `humanlike sweep run` / `resume`")

    for s in previous:
        signal.signal(s, stop)
    session = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
    resources = {"cpu": spec.resources["cpu"], "gpu": spec.resources["gpu"]}
    try:
        tuner = tune.Tuner(
            tune.with_resources(tune_trainable, resources),
            tune_config=tune.TuneConfig(search_alg=searcher, num_samples=-1, reuse_actors=True,
                                        max_concurrent_trials=spec.max_concurrent,
                                        trial_name_creator=_tune_name, trial_dirname_creator=_tune_name),
            run_config=tune.RunConfig(
                name=session, **tune_storage(spec.dir() / "tune"), verbose=0,  # a directory or a bucket
                stop=PruneStopper(searcher), callbacks=[TrialCatalog(searcher)],
                # A worker or node that dies is retried (the run dir makes it continue), and so is a trial out of
                # GPU memory (search/gpu.py); any other exception inside the trial is not: run_trial turns it
                # into a FAIL row.
                failure_config=tune.FailureConfig(max_failures=MAX_RETRIES),
            ),
        )
        tuner.fit()
    finally:
        board.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
        if stop_ray is not None:
            stop_ray()
    return searcher


def _trials_at_once(spec, echo: Echo) -> int:
    """How many trials the Ray cluster holds at once now (its CPUs and GPUs over a trial's resources, at most
    max_concurrent): what the progress line's ETA divides by. Says so when that is fewer than max_concurrent, so
    that a trial Tune has asked for and that waits for a free CPU is not mistaken for a slow one."""
    import ray

    total = ray.cluster_resources()
    need = {key: float(spec.resources[key.lower()]) for key in ("CPU", "GPU") if spec.resources[key.lower()] > 0}
    room = min((int(total.get(key, 0.0) // amount) for key, amount in need.items()), default=spec.max_concurrent)
    if room < spec.max_concurrent:
        held = ", ".join(f"{total.get(key, 0.0):g} {key}" for key in need)
        echo(f"this Ray cluster has {held} now: room for {room} trial(s) at once, fewer than max_concurrent "
             f"{spec.max_concurrent}; the others wait for resources (an autoscaling cluster makes room as it grows)")
    return max(1, min(room, spec.max_concurrent))


def _record_dir(spec) -> Path:
    """Where this machine's driver of the sweep records its Ray session (beside driver.lock)."""
    from search.storage import Location, scratch_dir

    where = spec.dir()
    return scratch_dir(where / "driver").parent if isinstance(where, Location) else where


def _end_orphans(spec, echo: Echo) -> None:
    from search.local_ray import end_orphans

    ended = end_orphans(_record_dir(spec))
    if ended and ended[1]:
        echo(f"ended {len(ended[1])} Ray processes a killed driver of this sweep left running (session "
             f"{Path(ended[0]).name}: pids {', '.join(map(str, ended[1]))})")


def _init_ray(address: str | None, num_cpus: int | None, num_gpus: int | None,
              record_dir: Path | None = None) -> Callable[[], None] | None:
    """Join a cluster (--address) or start an embedded Ray on this machine (loopback only, its session recorded
    in record_dir: search/local_ray.py); returns what stops it, None when Ray was running already."""
    import ray

    from search.preflight import job_env_vars

    if ray.is_initialized():
        return None
    job_env = job_env_vars()
    if address is None and job_env is not None:
        address = os.environ.get("RAY_ADDRESS") or "auto"  # a Ray job's entrypoint: its own cluster
    if address:
        # Workers on other machines do not inherit this process's environment (a local Ray's workers do). A job's
        # runtime env sets its variables itself, and Ray refuses a key given twice.
        keep = ("OMP_WAIT_POLICY", "HUMANLIKE_DATA_DIR")
        env = {k: os.environ[k] for k in keep if k in os.environ and k not in (job_env or {})}
        ray.init(address=address, log_to_driver=False, runtime_env={"env_vars": env} if env else None)
        return ray.shutdown
    from search.local_ray import start

    return start(num_cpus, num_gpus, record_dir)


def _last_failure(error_file: str | None) -> str:
    """The last failure Tune appended to a trial's error file, on one line."""
    if not error_file or not Path(error_file).is_file():
        return "the trial's worker failed"
    text = Path(error_file).read_text().split("Failure # ")[-1]
    lines = [ln.strip() for ln in text.splitlines()[1:] if ln.strip()]
    return " | ".join(lines[-2:]) or "the trial's worker failed"


def _tune_name(tune_trial) -> str:
    return f"trial_{tune_trial.config['trial']:05d}_{tune_trial.trial_id}"


def _fmt(params: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
