"""Profile one quick trial end to end (train RAE, train LDM, sample, score) in this process, with cProfile.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/profile_trial.py [--rae-epochs 2] [--ldm-epochs 10]
        [--train-classes 400] [--steps 50] [--top 25] [--trials 2]

Runs `--trials` trials of the same sweep one after another (the second shows what a Ray worker that is reused
pays: no dataset or critics loading), prints each trial's stage times from its result row, then the functions
with the most cumulative time over all of them. What this found is in README "Performance".
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rae-epochs", type=int, default=2)
    p.add_argument("--ldm-epochs", type=int, default=10)
    p.add_argument("--train-classes", type=int, default=400)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--trials", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--data-dir")
    args = p.parse_args(argv)

    import torch

    from search.spec import sweep_from_dict
    from search.trial import run_trial, trial_config

    torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp(prefix="profile_trial_"))
    raw = {"name": "profile", "root": str(root),
           "train": {"preset": "quick", "data": {"dataset": "omniglot", "train_classes": args.train_classes,
                                                  **({"data_dir": args.data_dir} if args.data_dir else {})},
                     "rae": {"epochs": args.rae_epochs}, "ldm": {"epochs": args.ldm_epochs}},
           "search": {"regularizers": {"prototype": {"choices": [1.0, 10.0, 100.0, 0.1][: args.trials]}}},
           "sampler": {"name": "grid"}, "n_trials": args.trials, "resources": {"cpu": args.threads},
           "evaluation": {"sampler": "ddim", "steps": args.steps}, "pruner": "none"}
    spec = sweep_from_dict(raw)
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    for number in range(args.trials):
        config = trial_config(spec, raw, number, {"w_prototype": raw["search"]["regularizers"]["prototype"]["choices"][number]},
                              threads=args.threads)
        start = time.perf_counter()
        profiler.enable()
        row = run_trial(config)
        profiler.disable()
        if row["state"] != "COMPLETE":
            raise SystemExit(f"trial {number}: {row['state']}: {row.get('error')}")
        print(f"trial {number}: {row['state']} total {time.perf_counter() - start:.1f} s = RAE {row['wall_rae_s']:.1f} "
              f"+ LDM {row['wall_ldm_s']:.1f} + sampling {row['wall_sample_s']:.1f} + critics "
              f"{row['wall_critics_s']:.1f} + the rest (loading, writing) "
              f"{row['wall_total_s'] - row['wall_rae_s'] - row['wall_ldm_s'] - row['wall_eval_s']:.1f} s", flush=True)
    print(f"all {args.trials} trials: {time.perf_counter() - t0:.1f} s; load avg %.1f" % os.getloadavg()[0])
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.top)
    print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
