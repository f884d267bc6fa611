"""One trial of a sweep: train the regularized autoencoder and its LDM, then score the samples against people.

`run_trial(config, reporter)` is a plain function (STYLE 4): Ray Tune runs it through search/driver.py, a test or
a notebook calls it directly. Every trial ends with exactly one result row (search/results.py), written atomically
by the trial itself *before* it returns, so a driver that dies after a trial finished but before telling the study
finds the row on restart and reconciles from it:

    COMPLETE  training and evaluation finished: originality, recognizability, the distance to human, the values
    PRUNED    the reporter raised TrialPruned (a pruner stopped the trial): the row keeps the last reported value
    FAIL      an exception, a NaN loss (TrainingDiverged) or a NaN metric: the reason is in `error`

The run directory is checkpointed at every epoch by models.train, so the same config run again (a driver that was
killed, a Ray worker that died) continues from the last finished epoch instead of starting over. When the sweep
lives in a bucket, the trial trains in a local scratch directory that it mirrors there after every epoch and
restores from there when it starts (search/storage.py RunMirror), so it continues on any node.

config (a plain dict, so that Ray can ship it; `trial_config` builds it):
    spec        the sweep file as a mapping (search.spec.sweep_from_dict reads it): objective, space, name
    trial       the Optuna trial number;  params: the trial's parameters (search.space.suggest)
    train       TrainConfig.to_dict() (search.space.train_config_for);  evaluation: search.space.evaluation_for
    sweep_dir   where results/ lives;  run_dir: the trial's run directory (both paths or bucket URIs);
    threads     torch threads (>= 1)
"""
from __future__ import annotations

import contextlib
import fcntl
import math
import os
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

Reporter = Callable[[str, dict[str, Any]], None]

# Per worker process: a Ray actor that runs several trials loads each training set and each critic set once.
_DATASETS: dict[tuple[str, str | None], Any] = {}
_CRITICS: dict[str, Any] = {}


class TrialPruned(Exception):
    """Raised by a reporter to stop a trial early; the trial is recorded as PRUNED with its last values."""


class NonFiniteMetric(RuntimeError):
    """The evaluation produced NaN or infinity (for example from a collapsed model)."""


def trial_dir(sweep_dir: str | Path, number: int) -> Path:
    """<sweep dir>/trials/<number:05d>: everything one trial writes besides its result row (a Location when the
    sweep is in a bucket)."""
    from search.storage import as_path

    return as_path(sweep_dir) / "trials" / f"{number:05d}"


def trial_config(spec, raw_spec: Mapping[str, Any], number: int, params: Mapping[str, Any], *,
                 threads: int = 1) -> dict[str, Any]:
    """The config of trial `number` of a sweep (what the driver hands to Ray and a test to run_trial)."""
    from search.space import evaluation_for, train_config_for

    # Absolute paths: a Ray worker does not necessarily run in the driver's working directory.
    sweep_dir = spec.dir().resolve()
    train = train_config_for(spec, params).to_dict()
    if train["data"]["data_dir"]:
        train["data"]["data_dir"] = str(Path(train["data"]["data_dir"]).expanduser().resolve())
    evaluation = evaluation_for(spec, params)
    if evaluation.get("critics") and Path(evaluation["critics"]).expanduser().is_dir():  # a directory, not a name
        evaluation["critics"] = str(Path(evaluation["critics"]).expanduser().resolve())
    # The trial rebuilds the spec for its row (space, objective); warm-start sources are the driver's business.
    raw = {k: v for k, v in raw_spec.items() if k != "warm_start"}
    return {
        "spec": raw, "sweep": spec.name, "sweep_dir": str(sweep_dir), "trial": int(number), "params": dict(params),
        "train": train, "evaluation": evaluation,
        "run_dir": str(trial_dir(sweep_dir, number) / "run"), "threads": max(1, int(threads)),
    }


def pruning_value(stage: str, metrics: Mapping[str, Any]) -> tuple[int, float] | None:
    """The (step, value) a stage report gives the pruner, or None: step 0 is the held-out reconstruction error
    after the RAE stage, step k the LDM's training loss after its epoch k (both lower is better)."""
    if stage == "rae_done":
        return 0, float(metrics["test_rec"])
    if stage == "ldm":
        return int(metrics["epoch"]), float(metrics["loss"])
    return None


def run_trial(config: dict[str, Any], reporter: Reporter | None = None) -> dict[str, Any]:
    """Train, evaluate and record one trial; returns its result row (state COMPLETE, PRUNED or FAIL).

    Exceptions of the training or the evaluation become a FAIL row and are not raised: one broken configuration
    must not stop a sweep; except running out of GPU memory, which depends on the trials sharing the GPU and is
    raised for the runner to retry (search/gpu.py). BaseExceptions (KeyboardInterrupt, Ray stopping the worker
    with SystemExit) pass through and leave no row: the trial was interrupted, not finished, and the next driver
    run continues it.
    """
    from search.spec import sweep_from_dict
    from search.storage import RunMirror

    spec = sweep_from_dict(config["spec"], check_data=False)
    mirror = RunMirror.for_run_dir(config["run_dir"])  # local: mirror.local is the run dir itself
    with trial_lock(mirror.local.parent):
        from search.results import read_any, trial_path

        done = trial_path(config["sweep_dir"], config["trial"])
        if done.is_file():  # finished by another process while this one waited for the lock
            return read_any(done).to_dict("records")[0]
        mirror.restore()  # a trial continued on another node starts from its last mirrored epoch
        try:
            row = _run_locked(config, spec, reporter, mirror)
        except SystemExit:
            # Tune stopped the worker inside a report (a pruned trial, whose row the driver writes, or a stopping
            # sweep): every epoch was mirrored before that report, so the node's scratch copy is not needed; a
            # continued trial restores from the bucket.
            mirror.discard()
            raise
        mirror.discard()  # in a bucket's sweep: the row is written, every file is mirrored
        return row


def _run_locked(config: dict[str, Any], spec, reporter: Reporter | None, mirror) -> dict[str, Any]:
    import torch

    t0 = time.perf_counter()
    row: dict[str, Any] = {"started_at": _now()}
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, int(config.get("threads") or 1)))  # the trial's CPU share
    try:
        return _train_and_evaluate(config, spec, reporter, row, t0, mirror)
    finally:
        torch.set_num_threads(threads)  # a caller running trials in its own process keeps its setting


def _train_and_evaluate(config: dict[str, Any], spec, reporter: Reporter | None, row: dict[str, Any],
                        t0: float, mirror) -> dict[str, Any]:
    from models.config import config_from_dict
    from search.spec import objective_values

    cfg = config_from_dict(config["train"])
    tracker = _LastValue(reporter, mirror.push)
    from search.gpu import is_out_of_memory, placement

    row.update(base_row(spec, config, cfg), **placement())
    earlier_s = 0.0  # stage time spent by earlier attempts of a continued trial
    try:
        data = dataset_for(cfg)
        from models.train import train_run

        t_train = time.perf_counter()
        summary = train_run(cfg, mirror.local, data=data, progress=False, reporter=tracker)
        row.update(wall_rae_s=summary.rae["wall_s"], wall_ldm_s=summary.ldm["wall_s"])
        # A trial continued from an earlier driver trained part of its stages then: its cost counts that time too
        # (the stages' wall_s add up over attempts), not only this attempt's.
        earlier_s = max(0.0, summary.rae["wall_s"] + summary.ldm["wall_s"] - (time.perf_counter() - t_train))
        t_eval = time.perf_counter()
        metrics = _evaluate(mirror.local, config["evaluation"], cfg, data)
        row["wall_eval_s"] = time.perf_counter() - t_eval
        bad = [k for k in ("originality", "recognizability") if not math.isfinite(metrics[k])]
        if bad:
            raise NonFiniteMetric(", ".join(f"{k} is {metrics[k]}" for k in bad))
        values = objective_values(spec.objective, originality=metrics["originality"],
                                  recognizability=metrics["recognizability"],
                                  human_originality=metrics["human_originality"],
                                  human_recognizability=metrics["human_recognizability"],
                                  normalization=config["evaluation"]["normalization"])
        row.update(metrics, state="COMPLETE", value_0=values[0], value_1=values[1] if len(values) > 1 else None)
    except TrialPruned as exc:
        row.update(state="PRUNED", error=str(exc) or f"pruned at step {tracker.step}")
    except Exception as exc:  # noqa: BLE001 - every failure of one configuration is data for the sweep
        if is_out_of_memory(exc):  # the GPU's neighbours, not the configuration: Ray retries it (search/gpu.py)
            raise
        row.update(state="FAIL", error=describe_error(exc))
    from search.results import peak_rss_mb, write_trial_row

    mirror.push()  # the evaluation's files; the row below points at the mirrored run directory
    row.update(last_step=tracker.step, last_value=tracker.value,
               wall_total_s=time.perf_counter() - t0 + earlier_s,
               peak_rss_mb=peak_rss_mb(), finished_at=_now())
    write_trial_row(config["sweep_dir"], row, space=spec.space)
    return row


def base_row(spec, config: Mapping[str, Any], cfg=None) -> dict[str, Any]:
    """The columns a trial's row has whatever its end (the driver uses it too, for trials it records itself)."""
    from models.config import config_from_dict
    from search.results import code_version

    cfg = cfg or config_from_dict(config["train"])
    ev = config["evaluation"]
    return {
        "sweep": spec.name, "trial": int(config["trial"]), "state": "FAIL", "params": dict(config["params"]),
        "setting": cfg.rae.setting, "dataset": cfg.data.dataset, "objective": spec.objective,
        "normalization": ev.get("normalization"), "sampler": ev.get("sampler"), "sampler_steps": ev.get("steps"),
        "guidance": ev.get("guidance"), "guidance_rule": ev.get("guidance_rule"), "seed": cfg.seed,
        "code_version": code_version(),
        "run_dir": str(config["run_dir"]),
        # Restarts after a failed worker (lost node, out of GPU memory): the driver counts them into the config.
        "retries": int(config.get("retries") or 0), "oom_retries": int(config.get("oom_retries") or 0),
    }


@contextlib.contextmanager
def trial_lock(directory: Path, *, timeout_s: float = 900.0) -> Iterator[None]:
    """Hold <trial dir>/trial.lock while the trial runs. A worker of a killed driver can outlive it by some
    seconds; the trial run again by the next driver waits here until that process is gone (the kernel releases
    a dead process's flock), so two processes never train into one run directory at the same time."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / "trial.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{directory}: another process has held trial.lock for {timeout_s:.0f} s")
                time.sleep(1.0)
        yield
    finally:
        os.close(fd)


def dataset_for(cfg):
    """The dataset of a training config, loaded once per process."""
    from models.data import load_dataset

    key = (cfg.data.dataset, cfg.data.data_dir)
    if key not in _DATASETS:
        _DATASETS[key] = load_dataset(cfg.data.dataset, data_dir=cfg.data.data_dir)
    return _DATASETS[key]


def _evaluate(run_dir: Path, eval_cfg: Mapping[str, Any], cfg, data) -> dict[str, Any]:
    """Originality, recognizability and the distance to the human point of a trained run (SPEC part 0), by the
    same pipeline as `humanlike evaluate` (evaluation.run_eval: every test class, as many samples per class as
    people drew; the result JSON and the samples land in the run directory)."""
    from evaluation.run_eval import evaluate_run

    critics = critics_for(eval_cfg.get("critics") or cfg.data.dataset)
    result, _ = evaluate_run(run_dir, sampler=eval_cfg["sampler"], steps=eval_cfg["steps"],
                             guidance=eval_cfg["guidance"], guidance_rule=eval_cfg["guidance_rule"],
                             seed=cfg.seed, critics=critics,
                             data_dir=cfg.data.data_dir, normalization=eval_cfg["normalization"],
                             imageset=data,  # the process's cached copy: no second load per trial
                             device=cfg.device)  # where it trained: the GPU Ray assigned the trial, if any
    human = result["human_point"]
    lake = (result.get("human_points") or {}).get("lake2015") or {}
    return {**ceiling_columns(result), **ink_columns(result), "wall_ceilings_s": result.get("ceilings_seconds"),
            "lake2015_originality": lake.get("originality"), "lake2015_recognizability": lake.get("recognizability"),
            "originality": result["originality"], "recognizability": result["recognizability"],
            "distance": result["distance_to_human"], "human_originality": human["originality"],
            "human_recognizability": human["recognizability"], "critics": critics.hash,
            "threshold": critics.threshold, "sampler_steps": result["steps"],  # the steps really run (DDPM: T)
            "wall_sample_s": result["generate_seconds"], "wall_critics_s": result["score_seconds"]}


def ceiling_columns(result: Mapping[str, Any]) -> dict[str, Any]:
    """The stage-ceiling columns of a row (schema 3) from an evaluation result (evaluation/ceilings.py)."""
    from search.results import CEILING_AXES, CEILING_STAGES

    ceilings = result.get("stage_ceilings") or {}
    row = {f"ceiling_{stage}_{axis}": (ceilings.get(stage) or {}).get(axis) for stage in CEILING_STAGES
           for axis in CEILING_AXES}
    row.update({k: ceilings.get(k) for k in ("latent_spread_ratio", "nearest_exemplar_sampled",
                                             "nearest_exemplar_real")})
    return row


def ink_columns(result: Mapping[str, Any]) -> dict[str, Any]:
    """The ink columns of a row (schema 5) from an evaluation result (evaluation/ink.py): how much of the samples',
    of people's and of the autoencoder's reconstructions' ink is mid-grey."""
    ink = result.get("ink") or {}
    ae = (result.get("stage_ceilings") or {}).get("ae") or {}
    return {"ink_grey_share": (ink.get("samples") or {}).get("grey_share"),
            "ink_grey_share_human": (ink.get("human") or {}).get("grey_share"),
            "ink_grey_share_ae": ae.get("grey_share")}


def critics_for(where: str):
    """The critics of a directory, or a dataset's shipped critics, loaded once per process."""
    if where not in _CRITICS:
        from evaluation.critics import load_critics

        _CRITICS[where] = load_critics(where)
    return _CRITICS[where]


class _LastValue:
    """The reporter train_run calls (after each epoch's checkpoint): mirrors the run directory, remembers the last
    pruning value and forwards every report outward (which may raise TrialPruned: the mirror is up to date)."""

    def __init__(self, outer: Reporter | None, on_checkpoint: Callable[[], Any] = lambda: None) -> None:
        self.outer, self.on_checkpoint = outer, on_checkpoint
        self.step: int | None = None
        self.value: float | None = None

    def __call__(self, stage: str, metrics: dict[str, Any]) -> None:
        self.on_checkpoint()
        found = pruning_value(stage, metrics)
        if found is not None:
            self.step, self.value = found
        if self.outer is not None:
            self.outer(stage, metrics)


def describe_error(exc: BaseException, limit: int = 2000) -> str:
    """'Type: message (at file:line function <- ...)', the innermost frames first, short enough for a cell."""
    head = f"{type(exc).__name__}: {exc}"
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))
    text = f"{head} (at {where})" if where else head
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
