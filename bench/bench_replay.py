"""Replay benchmark: trials each sampler needs to come within 10% of the best distance to human (search/replay.py).

    .venv/bin/python bench/bench_replay.py [bench/replay_table.parquet] [--seeds 20]
        [--samplers grid,random,tpe,tpe-random-start,gp] [--trials N] [--tolerance 0.10] [--out replay.png]

The table is real: the paper's protocol at the standard preset on Omniglot, every trial of the sweeps of
docs/recipe.md ("The paper's question": examples/standard_grid.yaml, its seed-1 repeats and its edge weights),
exported by bench/make_replay_table.py; the configurations trained with two seeds give the seed-to-seed noise
(the first table, quick preset shortened, is bench/replay_table_quick.parquet).
Prints, per sampler, the median and interquartile range over seeds of the number of trials to reach the target
(the table's best distance + tolerance), and the ratio of the default sampler (TPE, with its initial design) to the
grid; draws the convergence curves. Targets (issue 14): TPE at most a third of the grid's trials at 10%, no worse
than the grid at 5%.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

DEFAULT_TABLE = Path(__file__).with_name("replay_table.parquet")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("table", nargs="?", default=str(DEFAULT_TABLE))
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--samplers", help="comma list (default: all of search.replay.SAMPLERS)")
    p.add_argument("--trials", type=int, help="budget per run (default: the grid's size)")
    p.add_argument("--tolerance", type=float, default=0.10)
    p.add_argument("--out", default="replay.png")
    p.add_argument("--lists", action="store_true",
                   help="the samplers choose among the table's own weights (as the grid does), a configuration "
                        "proposed again reused as a sweep reuses it: trials then count trainings")
    args = p.parse_args(argv)

    import pandas as pd

    from search.replay import SAMPLERS, Surrogate, plot, replay

    samplers = args.samplers.split(",") if args.samplers else list(SAMPLERS)
    unknown = [s for s in samplers if s not in SAMPLERS]
    if unknown:
        p.error(f"--samplers: unknown {unknown}; choose from {', '.join(SAMPLERS)}")
    if not Path(args.table).is_file():
        p.error(f"table not found: {args.table}")
    surrogate = Surrogate.from_table(pd.read_parquet(args.table))
    print(f"table {args.table}: {surrogate.n_rows} trials, {len(surrogate.grid)} configurations, settings "
          f"{', '.join(surrogate.curves)}; seed noise (originality, recognizability) = "
          f"({surrogate.noise[0]:.4f}, {surrogate.noise[1]:.4f})")
    t0 = time.perf_counter()
    result = replay(surrogate, samplers, seeds=args.seeds, n_trials=args.trials, tolerance=args.tolerance,
                    lists=args.lists)
    print(f"best distance in the table {result['best']:.4f}; target (+{args.tolerance:.0%}) {result['target']:.4f}; "
          f"budget {result['n_trials']} trials; {args.seeds} seeds; {time.perf_counter() - t0:.0f} s"
          + ("; lists: the table's weights, trials to target = trainings, proposals again reused" if args.lists
             else ""))
    print(f"{'sampler':16s} {'median':>7s} {'q25':>6s} {'q75':>6s} {'misses':>7s} {'trained':>8s}")
    for name, r in result["samplers"].items():
        print(f"{name:16s} {r['median']:7.1f} {r['q25']:6.1f} {r['q75']:6.1f} {r['misses']:7d} {r['trainings']:8.1f}")
    s = result["samplers"]
    if "tpe" in s and "grid" in s:
        print(f"tpe / grid (medians) = {s['tpe']['median'] / s['grid']['median']:.2f}   (target <= 0.33)")
    plot(result, args.out)
    print(f"curves: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
