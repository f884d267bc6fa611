"""Everything a sweep needs from this machine, checked in the driver before Ray starts and before anything is written.

A sweep that cannot work should stop in its first seconds with exit status 2, not after Ray has started and three
trials have failed with the same message. The sweep file's own mistakes (keys, values, settings that cannot work
together: search/spec.py) are found when it is read; this module checks what the file cannot show:

    root        inside a Ray job, a relative root would land in the job's temporary copy of the project
    critics     the evaluation's critics exist, load, and were trained on the sweep's dataset
    dataset     resolved (data_dir, $HUMANLIKE_DATA_DIR, the download cache) and loaded in full: a missing,
                unreachable, truncated or malformed file stops here, named, with its fix. The decoded copy is
                cached (models/data/cache.py), so the workers then read it in a fraction of a second
    sizes       the training config's class counts and batch sizes fit the dataset as loaded
    resources   a local sweep's embedded Ray can place one trial (its CPUs and GPUs exist here)

Each check raises SweepError or DataError (both ValueErrors: `humanlike` prints the message and exits with 2).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from search.errors import SweepError

Echo = Callable[[str], None]


def preflight(spec, *, embedded: bool, num_cpus: int | None = None, num_gpus: int | None = None,
              echo: Echo = print) -> None:
    """Run every check; the first failure raises. `embedded`: the driver will start Ray on this machine."""
    check_root_in_job(spec)
    if embedded:
        check_resources(spec, num_cpus=num_cpus, num_gpus=num_gpus)
    check_critics(spec)  # every trial would fail at its evaluation otherwise
    check_data(spec, echo=echo)


def check_root_in_job(spec) -> None:
    """Inside a Ray job the working directory is Ray's temporary copy of the project (a new one whenever the code
    changes, gone with the cluster): a relative root would put the sweep there, and a resubmitted job would not find
    it. Raises SweepError (before Ray starts and before anything is written)."""
    from search.storage import is_remote

    if job_env_vars() is None or is_remote(spec.root) or Path(spec.root).expanduser().is_absolute():
        return
    raise SweepError(f"root: {spec.root!r} is relative, and this Ray job runs in a temporary copy of the project "
                     f"({os.getcwd()}); give an absolute path that every node sees (NFS) or a bucket URI, in the "
                     "sweep file or with --root")


def check_critics(spec) -> None:
    """The critics the evaluation will use exist and were trained for the sweep's dataset (raises otherwise)."""
    from evaluation.run_eval import check_critics_match
    from search.trial import critics_for

    where = spec.evaluation.get("critics") or spec.dataset
    try:
        critics = critics_for(where)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"evaluation.critics: {exc}") from None
    check_critics_match(critics, spec.dataset)


def check_data(spec, *, echo: Echo = print):
    """Load the sweep's dataset as a trial will (same resolution, same loader) and check the training config's
    sizes against it; returns the ImageSet. The first load of a dataset decodes it and fills the cache."""
    import time

    from models.config import build_config
    from models.data import load_dataset, resolve_data_dir

    cfg = build_config(spec.train)
    root, _ = resolve_data_dir(cfg.data.data_dir)
    t0 = time.perf_counter()
    data = load_dataset(cfg.data.dataset, data_dir=cfg.data.data_dir)  # DataError names the file and the fault
    seconds = time.perf_counter() - t0
    if seconds > 2:
        echo(f"dataset {cfg.data.dataset} decoded from {root} in {seconds:.1f} s (cached for the trials)")
    check_sizes(cfg, data)
    return data


def check_sizes(cfg, data) -> None:
    """data.train_classes / test_classes within what the dataset has; at least one full batch per epoch (the
    trainers drop the last incomplete batch, so a batch larger than the training set trains nothing)."""
    for part, asked in (("train", cfg.data.train_classes), ("test", cfg.data.test_classes)):
        have = len(getattr(data, f"{part}_classes"))
        if asked is not None and asked > have:
            raise SweepError(f"train.data.{part}_classes: {asked}, but {data.name} has {have} {part} classes")
    n = len(data.train_images)
    if cfg.data.train_classes is not None:  # a seeded subset: count the images of the classes it keeps
        n = len(data.subset(train_classes=cfg.data.train_classes, seed=0).train_images)  # as models.train does
    for stage in ("rae", "ldm"):
        batch = getattr(cfg, stage).batch_size
        if batch > n:
            raise SweepError(f"train.{stage}.batch_size: {batch} is more than the {n} training images, so an epoch "
                             "has no full batch and nothing is trained: lower the batch size or use more classes")


def check_resources(spec, *, num_cpus: int | None, num_gpus: int | None) -> None:
    """One trial must fit on the embedded Ray, or Tune waits for resources that never come."""
    cpus = num_cpus or os.cpu_count() or 1
    if spec.resources["cpu"] > cpus:
        raise SweepError(f"resources.cpu: a trial asks for {spec.resources['cpu']:g} CPUs, this machine's Ray has "
                         f"{cpus} (--num-cpus); lower it, or run on a cluster with --address")
    if spec.resources["gpu"] > 0:
        gpus = num_gpus if num_gpus is not None else _visible_gpus()
        if spec.resources["gpu"] > gpus:
            raise SweepError(f"resources.gpu: a trial asks for {spec.resources['gpu']:g} GPU, this machine has "
                             f"{gpus}; set resources.gpu: 0, or run on a cluster with --address")


def _visible_gpus() -> int:
    import torch

    return torch.cuda.device_count()


def job_env_vars() -> dict[str, str] | None:
    """The env_vars of the Ray job this process is the entrypoint of, or None outside a job."""
    import json

    injected = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")  # set by Ray's job supervisor for the entrypoint
    if not injected:
        return None
    return dict((json.loads(injected).get("runtime_env") or {}).get("env_vars") or {})
