"""Write bench/replay_table.parquet from the replay sweeps' results (bench/replay_grid.yaml, bench/replay_noise.yaml).

    .venv/bin/python bench/make_replay_table.py [--sweeps replay_grid,replay_noise] [--root sweeps] [--out ...]

Keeps the columns the surrogate and a reader need (setting, parameters, both axes, distance, the human point,
seed, stage times, critics hash, code version), so the committed file stays a few KB.
"""
from __future__ import annotations

import argparse
from pathlib import Path

KEEP = ("sweep", "trial", "state", "setting", "seed", "originality", "recognizability", "distance",
        "human_originality", "human_recognizability", "critics", "sampler", "sampler_steps", "guidance",
        "wall_rae_s", "wall_ldm_s", "wall_sample_s", "wall_critics_s", "wall_total_s", "peak_rss_mb", "code_version")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sweeps", default="replay_grid,replay_noise")
    p.add_argument("--root", default="sweeps")
    p.add_argument("--out", default=str(Path(__file__).with_name("replay_table.parquet")))
    args = p.parse_args(argv)

    import pandas as pd

    from search.results import read_results

    frames = [read_results(Path(args.root) / name) for name in args.sweeps.split(",")]
    df = pd.concat(frames, ignore_index=True)
    params = [c for c in df.columns if c.startswith("param.")]
    df = df[[c for c in KEEP if c in df.columns] + params]
    df.to_parquet(args.out, index=False)
    counts = df.groupby(["sweep", "state"]).size().to_dict()
    print(f"{args.out}: {len(df)} rows {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
