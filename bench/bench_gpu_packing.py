"""Benchmark: trials per hour on one GPU when 1, 2, 4 or 8 trials share it (resources.gpu = 1/k).

For each packing k it runs a fresh sweep of k * rounds trials of the paper preset (grid over the prototype weight,
so every level trains the same kind of model) on an embedded Ray that sees one GPU, with resources
{cpu: cpus/k, gpu: 1/k} and max_concurrent k, and prints

    trials/GPU  trials  done  wall_s  trials/hour  mean trial s  peak RSS MiB  OOM retries

wall_s runs from the first trial's start to the last one's end (Ray's start-up is left out); trials/hour is
trials / wall. A level whose trials run out of GPU memory shows it in the OOM retries column (search/gpu.py);
failed trials count as not done.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/bench_gpu_packing.py --data-dir DATA [--packing 1 2 4 8]
        [--rounds 2] [--rae-epochs 5 --ldm-epochs 5]     # fewer epochs: a short measurement
    .venv/bin/python bench/bench_gpu_packing.py --dry-run  # CPU only: a logical GPU, tiny trials (plumbing check)

Needs a CUDA GPU unless --dry-run. The trials train, sample and score on the GPU share Ray assigned them (the
training config's device 'auto', models/device.py). Not yet run on a real GPU: no figures recorded so far.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The smallest real trial (tests/conftest.py TINY): the dry run checks the plumbing, not the speed.
TINY = {"preset": "quick", "data": {"dataset": "omniglot", "train_classes": 20}, "rae": {"epochs": 1},
        "ldm": {"epochs": 1}, "sample": {"sampler": "ddim", "steps": 2, "grid_classes": 2, "grid_samples": 2}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--packing", type=int, nargs="+", default=None, metavar="K",
                   help="trials per GPU to measure (default 1 2 4 8; dry run: 1 2)")
    p.add_argument("--rounds", type=int, default=2, help="trials per level = K * rounds (default 2)")
    p.add_argument("--rae-epochs", type=int, help="RAE epochs (default: the paper preset's)")
    p.add_argument("--ldm-epochs", type=int, help="LDM epochs (default: the paper preset's)")
    p.add_argument("--cpus", type=float, default=float(os.cpu_count() or 1),
                   help="CPUs the trials of one GPU share (default: all of this machine)")
    p.add_argument("--data-dir", default=os.environ.get("HUMANLIKE_DATA_DIR"),
                   help="dataset directory (default $HUMANLIKE_DATA_DIR)")
    p.add_argument("--critics", help="critics directory (default: the dataset's shipped critics)")
    p.add_argument("--root", help="where the benchmark's sweeps go (default: a temporary directory)")
    p.add_argument("--json", dest="json_out", help="also write the results to this JSON file")
    p.add_argument("--dry-run", action="store_true",
                   help="no GPU: one logical GPU, tiny trials; checks that the benchmark runs, measures nothing")
    args = p.parse_args(argv)
    args.packing = args.packing or ([1, 2] if args.dry_run else [1, 2, 4, 8])
    for key in ("packing",):
        bad = [k for k in args.packing if k < 1]
        if bad:
            p.error(f"--{key}: trials per GPU must be >= 1, got {bad[0]}")
    for key in ("rounds", "rae_epochs", "ldm_epochs"):
        value = getattr(args, key)
        if value is not None and value < 1:
            p.error(f"--{key.replace('_', '-')}: must be >= 1, got {value}")
    if args.cpus <= 0:
        p.error(f"--cpus: must be > 0, got {args.cpus}")
    if not args.data_dir:
        p.error("--data-dir: not given and $HUMANLIKE_DATA_DIR is not set")
    return args


def sweep_dict(args: argparse.Namespace, k: int, root: Path) -> dict:
    """The sweep of packing level k: k * rounds trials, each with 1/k of the GPU and cpus/k CPUs."""
    n = k * args.rounds
    train = json.loads(json.dumps(TINY)) if args.dry_run else {"preset": "paper", "data": {"dataset": "omniglot"}}
    train["data"]["data_dir"] = str(Path(args.data_dir).expanduser().resolve())
    if args.rae_epochs:
        train.setdefault("rae", {})["epochs"] = args.rae_epochs
    if args.ldm_epochs:
        train.setdefault("ldm", {})["epochs"] = args.ldm_epochs
    evaluation = {"sampler": "ddim", "steps": 2} if args.dry_run else {}
    if args.critics:
        evaluation["critics"] = args.critics
    return {
        "name": f"packing_{k}", "root": str(root), "train": train,
        # Distinct weights around the paper's range: the levels train comparable models.
        "search": {"regularizers": {"prototype": {"choices": [round(0.5 + 0.25 * i, 4) for i in range(n)]}}},
        "sampler": {"name": "grid"}, "n_trials": n, "max_concurrent": k, "pruner": "none",
        "resources": {"cpu": round(args.cpus / k, 4), "gpu": round(1.0 / k, 6)},
        **({"evaluation": evaluation} if evaluation else {}),
    }


def measure(args: argparse.Namespace, k: int, root: Path) -> dict:
    """Run packing level k in a fresh embedded Ray with one (logical, on a dry run) GPU; its figures."""
    import ray
    import yaml

    from search.driver import run_sweep
    from search.results import read_results
    from search.study import read_sweep_file

    path = root / f"packing_{k}.yaml"
    path.write_text(yaml.safe_dump(sweep_dict(args, k, root), sort_keys=False))
    spec, raw = read_sweep_file(path)
    ray.init(address="local", num_cpus=max(1, int(round(args.cpus))), num_gpus=1, include_dashboard=False,
             log_to_driver=False)
    try:
        t0 = time.perf_counter()
        outcome = run_sweep(spec, raw, echo=lambda line: print(f"  [{k}/GPU] {line}", flush=True))
        total = time.perf_counter() - t0
    finally:
        ray.shutdown()
    rows = read_results(spec.dir())
    done = rows[rows["state"] == "COMPLETE"]
    wall = (rows["finished_at"].max() - rows["started_at"].min()).total_seconds()
    return {"trials_per_gpu": k, "trials": int(len(rows)), "done": int(len(done)), "wall_s": wall,
            "sweep_s": total, "trials_per_hour": len(done) / wall * 3600.0 if wall > 0 else float("nan"),
            "mean_trial_s": float(rows["wall_total_s"].mean()),
            "peak_rss_mb": float(rows["peak_rss_mb"].max()),
            "oom_retries": int(rows["oom_retries"].fillna(0).sum()), "interrupted": outcome.interrupted}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (spinning threads on shared cores)
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print("no CUDA GPU here: run on a GPU machine, or use --dry-run to check the benchmark itself",
              file=sys.stderr)
        return 2
    device = "logical GPU (dry run, CPU training)" if args.dry_run else torch.cuda.get_device_name(0)
    print(f"GPU packing benchmark: {device}; {args.cpus:g} CPUs shared; rounds {args.rounds}; "
          f"load avg {os.getloadavg()[0]:.1f}")
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="bench_gpu_packing_"))
    results = [measure(args, k, root) for k in args.packing]
    print(f"{'trials/GPU':>10} {'trials':>6} {'done':>4} {'wall_s':>8} {'trials/hour':>11} {'mean trial s':>12} "
          f"{'peak RSS MiB':>12} {'OOM retries':>11}")
    for r in results:
        print(f"{r['trials_per_gpu']:>10} {r['trials']:>6} {r['done']:>4} {r['wall_s']:>8.1f} "
              f"{r['trials_per_hour']:>11.1f} {r['mean_trial_s']:>12.1f} {r['peak_rss_mb']:>12.0f} "
              f"{r['oom_retries']:>11}")
    if args.dry_run:
        print("dry run: these figures are CPU time of tiny trials, not a GPU measurement")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"device": device, "dry_run": args.dry_run,
                                                   "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
