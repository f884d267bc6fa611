"""How faint a sweep's samples are, beside people's drawings: of the ink pixels (> 64 of 255), the fraction that
are mid-grey (64-191), and the ink coverage (evaluation/ink.py), for the held-out human drawings and for every
finished trial whose stored samples (evaluation_*.npz in its run directory) are on this machine. Rows of schema 5
carry the grey share already (`ink_grey_share`); this reads older sweeps' samples. The critics score shape, not contrast:
a setting whose samples are grey ghosts of the exemplar can sit as near people as one that draws crisp strokes,
and this is the number that shows it (docs/recipe.md, "On QuickDraw").

    python bench/bench_ink.py results/quickdraw_wide_seed1 results/quickdraw_wide_edges [--data-dir DIR]
"""
from __future__ import annotations

import argparse

import numpy as np

from evaluation.ink import ink_stats


def main(argv=None) -> None:
    from models.data import load_dataset
    from search.report import completed, row_params, setting_of
    from search.rescore import combined_results, samples_path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweeps", nargs="+", help="sweep directories, evaluated alike (one dataset)")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args(argv)
    df = completed(combined_results(args.sweeps)[0])
    data = load_dataset(str(df["dataset"].dropna().iloc[0]), data_dir=args.data_dir)
    g, ink = (ink_stats(data.test_images.numpy())[k] for k in ("grey_share", "coverage"))
    print(f"{'held-out human drawings':44s} grey {g:.3f}  ink {ink:.3f}")
    for _, row in df.sort_values("distance").iterrows():
        path = samples_path(row)
        if not path.is_file():
            continue
        with np.load(path) as z:
            g, ink = (ink_stats(z["samples"])[k] for k in ("grey_share", "coverage"))
        weights = " + ".join(f"{v:g}" for k, v in row_params(row).items() if k.startswith("w_"))
        label = f"{row['sweep']} {int(row['trial'])}: {setting_of(row)} {weights}"
        print(f"{label:44.44s} grey {g:.3f}  ink {ink:.3f}  distance {row['distance']:.3f}")


if __name__ == "__main__":
    main()
