"""Benchmark: trials per hour, a plain Python loop against the sweep (Ray Tune + the Optuna study), 1 and 2 at once.

The same N trials (a grid of prototype weights, so every mode trains exactly the same configurations) run
  (a) plain   one after another in this process: run_trial(config) with torch on all cores;
  (b) sweep1  `run_sweep` with max_concurrent 1 and the trial given every core (torch threads = cores);
  (c) sweep2  `run_sweep` with max_concurrent 2 and one core per trial (torch threads = 1).
Each mode starts from an empty sweep directory; (b) and (c) include starting and stopping the embedded Ray, the
study's journal writes and the Parquet rows, i.e. everything a user pays for. Printed: trials/hour of each mode,
the ratios sweep1/plain (target >= 0.9) and sweep2/sweep1 (target >= 1.7 on 2 cores), and each mode's mean
per-stage wall time (RAE training, LDM training, sampling, critics) and peak memory from its Parquet rows.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/bench_throughput.py [--trials 4] [--preset quick]
        [--rae-epochs 1] [--ldm-epochs 8] [--train-classes 200] [--steps 50] [--modes plain,sweep1,sweep2]

The trial is the quick preset shortened (--rae-epochs/--ldm-epochs/--train-classes) so that the whole benchmark
takes minutes; it still loads the full dataset and critics, trains both stages and evaluates every test class.
Nothing is written outside a temporary directory (or --workdir).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: spinning threads on shared cores

STAGES = ("wall_rae_s", "wall_ldm_s", "wall_sample_s", "wall_critics_s", "wall_eval_s", "wall_total_s")


def sweep_dict(args, root: Path, name: str, *, concurrent: int, cpus: int) -> dict:
    weights = [float(10 ** (k - 1)) for k in range(args.trials)]  # 0.1, 1, 10, ...: one grid point per trial
    return {
        "name": name, "root": str(root),
        "train": {"preset": args.preset, "seed": 0,
                  "data": {"dataset": "omniglot", "train_classes": args.train_classes,
                           **({"data_dir": args.data_dir} if args.data_dir else {})},
                  "rae": {"epochs": args.rae_epochs}, "ldm": {"epochs": args.ldm_epochs}},
        "search": {"regularizers": {"prototype": {"choices": weights}}},
        "sampler": {"name": "grid"}, "n_trials": args.trials, "max_concurrent": concurrent,
        "resources": {"cpu": cpus, "gpu": 0}, "evaluation": {"sampler": "ddim", "steps": args.steps},
        "pruner": "none",
    }


def run_plain(args, root: Path) -> tuple[float, list[dict]]:
    """The N trials one after another in this process, torch on every core: the floor any orchestration adds to."""
    import torch

    from search.space import grid_points
    from search.spec import sweep_from_dict
    from search.trial import run_trial, trial_config

    raw = sweep_dict(args, root, "plain", concurrent=1, cpus=args.cores)
    spec = sweep_from_dict(raw)
    torch.set_num_threads(args.cores)
    rows = []
    t0 = time.perf_counter()
    for number, params in enumerate(grid_points(spec.space)):
        rows.append(run_trial(trial_config(spec, raw, number, params, threads=args.cores)))
    return time.perf_counter() - t0, rows


def run_swept(args, root: Path, name: str, concurrent: int) -> tuple[float, list[dict]]:
    from search.driver import run_sweep
    from search.results import read_results
    from search.spec import sweep_from_dict

    raw = sweep_dict(args, root, name, concurrent=concurrent, cpus=args.cores // concurrent)
    spec = sweep_from_dict(raw)
    t0 = time.perf_counter()
    outcome = run_sweep(spec, raw, num_cpus=args.cores, echo=lambda line: None)
    wall = time.perf_counter() - t0
    if outcome.counts.get("COMPLETE", 0) != args.trials:
        raise RuntimeError(f"{name}: expected {args.trials} COMPLETE trials, got {outcome.counts}")
    return wall, read_results(spec.dir()).to_dict("records")


def summary(rows: list[dict]) -> str:
    parts = []
    for key in STAGES:
        values = [r[key] for r in rows if r.get(key) is not None and r[key] == r[key]]
        if values:
            parts.append(f"{key[5:-2]} {statistics.mean(values):6.1f}s")
    mem = [r["peak_rss_mb"] for r in rows if r.get("peak_rss_mb")]
    if mem:
        parts.append(f"peak {max(mem):.0f} MiB")
    return "  ".join(parts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=4)
    p.add_argument("--preset", default="quick")
    p.add_argument("--rae-epochs", type=int, default=1)
    p.add_argument("--ldm-epochs", type=int, default=8)
    p.add_argument("--train-classes", type=int, default=200)
    p.add_argument("--steps", type=int, default=50, help="DDIM steps of the evaluation")
    p.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    p.add_argument("--modes", default="plain,sweep1,sweep2")
    p.add_argument("--data-dir")
    p.add_argument("--workdir", help="keep the sweeps here instead of a temporary directory")
    args = p.parse_args(argv)
    modes = args.modes.split(",")
    unknown = set(modes) - {"plain", "sweep1", "sweep2"}
    if unknown or args.trials < 1 or args.cores < 2 and "sweep2" in modes:
        p.error(f"--modes takes plain,sweep1,sweep2 (got {sorted(unknown)}); --trials >= 1; sweep2 needs >= 2 cores")

    root = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench_throughput_"))
    print(f"{args.trials} trials: {args.preset} preset, {args.train_classes} classes, RAE {args.rae_epochs} + LDM "
          f"{args.ldm_epochs} epochs, DDIM-{args.steps} on 150 test classes; {args.cores} cores; "
          "load avg %.1f %.1f %.1f" % os.getloadavg())
    per_hour = {}
    try:
        for mode in modes:
            load = os.getloadavg()[0]
            if mode == "plain":
                wall, rows = run_plain(args, root)
            else:
                wall, rows = run_swept(args, root, mode, concurrent=1 if mode == "sweep1" else 2)
            per_hour[mode] = 3600.0 * args.trials / wall
            print(f"{mode:7s} {wall:7.1f} s  {per_hour[mode]:6.1f} trials/h  (load {load:.1f})  {summary(rows)}",
                  flush=True)
    finally:
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)
    if "plain" in per_hour and "sweep1" in per_hour:
        print(f"sweep1 / plain  = {per_hour['sweep1'] / per_hour['plain']:.3f}   (target >= 0.90)")
    if "sweep1" in per_hour and "sweep2" in per_hour:
        print(f"sweep2 / sweep1 = {per_hour['sweep2'] / per_hour['sweep1']:.3f}   (target >= 1.70)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
