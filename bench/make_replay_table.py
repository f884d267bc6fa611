"""Write bench/replay_table.parquet from the rows of a grid sweep and its seed-1 repeats.

    .venv/bin/python bench/make_replay_table.py [--sweeps standard_grid,standard_grid_seed1,...] [--root results] [--out ...]

The table is the paper's protocol at the standard preset: examples/standard_grid.yaml (seven settings x three
weights, seed 0) and examples/standard_grid_seed1.yaml (its three best configurations with seed 1), both committed
under results/. The first table (quick preset shortened, bench/replay_grid.yaml + bench/replay_noise.yaml) is kept
as bench/replay_table_quick.parquet:

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
    p.add_argument("--sweeps", default="standard_grid,standard_grid_seed1,standard_grid_edges,standard_grid_edges2,standard_best_seed1")
    p.add_argument("--root", default="results")
    p.add_argument("--out", default=str(Path(__file__).with_name("replay_table.parquet")))
    args = p.parse_args(argv)

    import pandas as pd

    from search.rescore import ranked_results

    frames = []
    for name in args.sweeps.split(","):
        df, note = ranked_results(Path(args.root) / name)  # the shipped critics' re-scores where they exist
        if note:
            p.error(f"{name}: {note}")
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    scored = df.loc[df["state"] == "COMPLETE", "critics"].dropna().unique()
    if len(scored) > 1:
        p.error(f"the sweeps are scored by different critics ({', '.join(scored)}): rescore them with the same ones")
    params = [c for c in df.columns if c.startswith("param.")]
    df = df[[c for c in KEEP if c in df.columns] + params]
    df.to_parquet(args.out, index=False)
    counts = df.groupby(["sweep", "state"]).size().to_dict()
    print(f"{args.out}: {len(df)} rows {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
