"""Probe (docs/recipe.md, issue 14's spread target): how far would classifier-free guidance spread the latents even
with a perfect denoiser?

Guidance at weight w samples (ideally) from p(z|c)^(1+w) / p(z)^w. Take each class's latents as a Gaussian with
the pooled within-class variance s2 (per latent dimension, around the class mean mu_c; the class is a test
character, its latents those of its 19 held-out drawings) and all latents as one Gaussian with variance S2 around
the mean m. Then the guided distribution is Gaussian too, per dimension:

    precision  P = (1 + w) / s2 - w / S2,   mean  ((1 + w) mu_c / s2 - w m / S2) / P,   variance 1 / P,

pushed away from m (the mean moves outward) and narrowed (the variance shrinks). This script encodes the held-out
drawings with each run's autoencoder, draws 19 latents per class from that distribution, and prints their spread
over the real latents' (the stage ceiling's latent_spread_ratio, evaluation/ceilings.py) beside the spread the
run's own denoiser sampled (its evaluation), so the measured spread splits into what guidance does to these
latents by itself and what the trained model adds. w = 0 is the check (the real latents' own spread, about 1).

    OMP_WAIT_POLICY=PASSIVE python bench/probe_cfg_ideal.py results/standard_grid_v5 [RUN_OR_SWEEP ...] \
        [--weights 0 1 2] [--out table.parquet]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def ideal_spread(z, labels, w: float, *, seed: int = 0, per_class: int = 19) -> float:
    """Spread (scalar std over every entry) of latents drawn from the Gaussian ideal of guidance at weight w, over
    that of the real latents z (N, L) with class labels (N,)."""
    import torch

    z = z.double()
    classes = labels.unique()
    mu = torch.stack([z[labels == c].mean(0) for c in classes])  # (C, L)
    within = torch.cat([z[labels == c] - mu[i] for i, c in enumerate(classes)])
    s2 = within.var(0, unbiased=True)  # (L,) pooled within-class variance
    m, S2 = z.mean(0), z.var(0, unbiased=True)
    precision = (1 + w) / s2 - w / S2
    if (precision <= 0).any():
        raise ValueError(f"guidance {w}: the guided Gaussian is improper in {int((precision <= 0).sum())} dimensions")
    mean = ((1 + w) * mu / s2 - w * m / S2) / precision  # (C, L)
    g = torch.Generator().manual_seed(seed)
    draws = mean.repeat_interleave(per_class, 0) + torch.randn(len(classes) * per_class, z.shape[1], generator=g,
                                                                dtype=torch.float64) * precision.rsqrt()
    return float(draws.std() / z.std())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="run directories or sweep directories")
    ap.add_argument("--weights", nargs="+", type=float, default=[0.0, 1.0, 2.0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default=None, help="Parquet file for the table (one row per run)")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from probe_guidance import _shown, run_dirs

    runs = run_dirs(args.runs)

    import pandas as pd
    import torch

    from models.data import load_dataset
    from models.run import load_run
    from models.train import encode_images

    torch.set_num_threads(1)
    data = load_dataset("omniglot", data_dir=args.data_dir)
    rows = []
    for run_dir in runs:
        run = load_run(run_dir)
        with torch.no_grad():
            z = encode_images(run.ae, data.test_images, seed=0)
        evaluation = sorted(run_dir.glob("evaluation_ddim50_w1_seed*.json"))  # the trial's own: DDIM-50, CFG w 1
        measured = (json.loads(evaluation[0].read_text()).get("stage_ceilings") or {}).get("latent_spread_ratio") \
            if evaluation else None
        row = {"run": _shown(run_dir), "regularizers": json.dumps(run.config.rae.regularizers),
               "measured_cfg1": measured}
        row |= {f"ideal_w{w:g}": ideal_spread(z, data.test_labels, w) for w in args.weights}
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.out:
        pd.DataFrame(rows).to_parquet(args.out, index=False)
        print(f"table: {args.out}")


if __name__ == "__main__":
    main()
