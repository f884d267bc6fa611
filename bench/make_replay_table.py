"""Write bench/replay_table.parquet from the rows of the sweeps that asked the paper's question at the standard preset.

    .venv/bin/python bench/make_replay_table.py [--sweeps standard_grid_v5,...] [--root results] [--out ...]

The default: examples/standard_grid_v5.yaml (seven settings x three or four weights, seed 0), its edge weights
and its seed repeats (seeds 1 and 2 of the three nearest settings since 2026-12-07 evening), under results/, scored by the v5 critics (docs/performance.md). The v3-critics table
(bench/replay_table_v3grid.parquet) came from standard_grid, standard_grid_seed1, standard_grid_redraw,
standard_grid_edges, standard_grid_edges2 and standard_best_seed1 under results/v3. The v2-critics table
(bench/replay_table_v2grid.parquet) came from standard_grid, standard_grid_seed1,
standard_grid_edges, standard_grid_edges2 and standard_best_seed1 under results/ (--root results --out ...).
They are read as `sweep report --with` reads them
(search.rescore.combined_results: the shipped critics' re-scores, sweeps evaluated differently refused), and a
mix of critics is refused. The first table (quick preset shortened, bench/replay_grid.yaml +
bench/replay_noise.yaml) is kept as bench/replay_table_quick.parquet:

    .venv/bin/python bench/make_replay_table.py --sweeps replay_grid,replay_noise --root sweeps \
        --out bench/replay_table_quick.parquet

Keeps the columns the surrogate and a reader need (setting, parameters, both axes, distance, the human point,
seed, stage times, critics hash, code version), so the committed file stays a few KB.
"""
from __future__ import annotations

import argparse
from pathlib import Path

KEEP = ("sweep", "trial", "state", "setting", "seed", "originality", "recognizability", "distance",
        "human_originality", "human_recognizability", "critics", "scored_by", "sampler", "sampler_steps", "guidance",
        "wall_rae_s", "wall_ldm_s", "wall_sample_s", "wall_critics_s", "wall_total_s", "peak_rss_mb", "code_version")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sweeps", default="standard_grid_v5,standard_grid_v5_edges,standard_grid_v5_edges2,"
                   "standard_grid_v5_seed1,standard_v5_seed1,standard_grid_v5_seed1b,standard_grid_v5_seed2",
                   help="comma list of sweep names under --root")
    p.add_argument("--root", default="results")
    p.add_argument("--out", default=str(Path(__file__).with_name("replay_table.parquet")))
    args = p.parse_args(argv)

    from search.rescore import combined_results
    from search.results import trained_rows

    try:
        df, notes = combined_results([Path(args.root) / name for name in args.sweeps.split(",")])
    except ValueError as exc:
        p.error(str(exc))
    if notes:  # scored by different critics: `humanlike sweep rescore NAME` first
        p.error("; ".join(notes))
    df = trained_rows(df)  # a repeat of an earlier trial's result is not another observation
    params = [c for c in df.columns if c.startswith("param.")]
    df = df[[c for c in KEEP if c in df.columns] + params]
    df.to_parquet(args.out, index=False)
    counts = df.groupby(["sweep", "state"]).size().to_dict()
    print(f"{args.out}: {len(df)} rows {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
