"""Probe (docs/recipe.md): which way of applying classifier-free guidance keeps the sampled latents at the real
latents' spread without losing the recognizability that guidance buys?

Each variant sets how the conditional and unconditional outputs of a trained denoiser are combined; the network,
the sampler (DDIM-50) and the critics (the shipped ones) stay. Each run is copied (its own evaluation files stay
as they are) and evaluated as a trial is; one JSON line per run and variant, and with --out a Parquet table.

Variants (W = guidance weight; t counts the 1000 training noise levels, 999 = pure noise):
    cfg:W              the paper's guidance, (1 + W) out_c - W out_u (models/diffusion/guidance.py)
    projected:W        ours: only the guidance step orthogonal to the conditional x0-prediction (guidance.py)
    rescale:W:PHI      cfg, rescaled per sample to the conditional output's std, mixed in with weight PHI
                       (Lin et al. 2024, section 3.4)
    interval:W:LO:HI   cfg with weight W only where LO <= t <= HI, the conditional model elsewhere
                       (Kynkaanniemi et al. 2024)
The last two patch the model's prediction inside this script only.

    OMP_WAIT_POLICY=PASSIVE python bench/probe_guidance.py RUN_DIR [RUN_DIR ...] --variants cfg:1 projected:2
    OMP_WAIT_POLICY=PASSIVE python bench/probe_guidance.py results/v3/standard_grid --variants projected:2 \
        --out table.parquet

A sweep directory stands for the run directories of its finished trials.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path


def parse_variant(variant: str):
    """(guidance weight, guidance rule of the model, patch or None): patch(c, u, x, a, t) -> the guided output."""
    from models.diffusion.guidance import guide

    name, *p = variant.split(":")
    try:
        p = [float(v) for v in p]
    except ValueError:
        p = []
    shapes = {"cfg": 1, "projected": 1, "rescale": 2, "interval": 3}
    if shapes.get(name) != len(p):
        raise SystemExit(f"unknown variant {variant!r}: cfg:W, projected:W, rescale:W:PHI or interval:W:LO:HI")
    w = p[0]
    cfg = lambda c, u: guide(c, u, w, "cfg", x=None, abar=None, prediction="v")  # noqa: E731 (the paper's rule)
    if name in ("cfg", "projected"):
        return w, name, None
    if name == "rescale":
        phi = p[1]

        def rescaled(c, u, x, a, t):
            out = cfg(c, u)
            return phi * out * (c.std(dim=1, keepdim=True) / out.std(dim=1, keepdim=True)) + (1 - phi) * out
        return w, "cfg", rescaled
    lo, hi = p[1], p[2]
    return w, "cfg", lambda c, u, x, a, t: cfg(c, u) if lo <= t <= hi else c


def run_dirs(paths: list[str]) -> list[Path]:
    """Run directories: each path itself, or the finished trials' run directories of a sweep directory."""
    from search.results import read_results

    out = []
    for p in map(Path, paths):
        if (p / "ldm.pt").is_file():
            out.append(p)
        elif (p / "results").is_dir():
            done = read_results(p)
            done = done[done["state"] == "COMPLETE"]
            out += [Path(d) for d in done["run_dir"] if (Path(d) / "ldm.pt").is_file()]
        else:
            raise SystemExit(f"{p}: neither a run directory (ldm.pt) nor a sweep directory (results/)")
    return out


def _shown(path: Path) -> str:
    """A run directory as the table records it: relative to the working directory when under it (a committed
    table then names the run wherever the repository is checked out)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="run directories or sweep directories")
    ap.add_argument("--variants", nargs="+", required=True)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="Parquet file for the table (one row per run and variant)")
    ap.add_argument("--figure", default=None, help="PNG: the first run's exemplars with samples of every variant")
    args = ap.parse_args()
    rules = {v: parse_variant(v) for v in args.variants}  # every variant checked before anything loads
    runs = run_dirs(args.runs)

    import numpy as np
    import pandas as pd
    import torch

    from evaluation.critics import load_critics
    from evaluation.run_eval import evaluate_run
    from models.data import load_dataset
    from models.diffusion.model import LatentDiffusion

    torch.set_num_threads(args.threads)
    data = load_dataset("omniglot", data_dir=args.data_dir)
    critics = load_critics("omniglot")
    shipped = LatentDiffusion.predict_eps
    shown, table = {}, []
    for run_dir in runs:
        for variant, (w, rule, patch) in rules.items():
            if patch is not None:
                def predict_eps(self, x, t, cond, *, guidance, guidance_rule="cfg", patch=patch):
                    c, u = self.denoiser(torch.cat([x, x]), t, torch.cat([cond, torch.zeros_like(cond)])).chunk(2)
                    a = self.alphas_cumprod.to(x.dtype)[t][:, None]
                    out = patch(c, u, x, a, int(t[0]))
                    return a.sqrt() * out + (1.0 - a).sqrt() * x if self.prediction == "v" else out

                LatentDiffusion.predict_eps = predict_eps
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    run = Path(tmp) / "run"
                    run.mkdir()
                    for name in ("config.yaml", "rae.pt", "ldm.pt"):
                        shutil.copy(run_dir / name, run / name)
                    res, path = evaluate_run(run, sampler="ddim", steps=50, guidance=w, guidance_rule=rule,
                                             critics=critics, imageset=data)
                    if run_dir == runs[0]:
                        shown[variant] = np.load(path.with_suffix(".npz"))["samples"]
            finally:
                LatentDiffusion.predict_eps = shipped
            c = res["stage_ceilings"]
            rec = {"run": _shown(run_dir), "regularizers": json.dumps(res["regularizers"], sort_keys=True),
                   "variant": variant, "sampler": "ddim50", "critics": res["critics_hash"],
                   "originality": round(res["originality"], 4), "recognizability": round(res["recognizability"], 4),
                   "distance": round(res["distance_to_human"], 4), "spread_ratio": round(c["latent_spread_ratio"], 3),
                   "nearest_own_sampled": round(c["nearest_exemplar_sampled"], 3),
                   "nearest_own_real": round(c["nearest_exemplar_real"], 3)}
            table.append(rec)
            print(json.dumps(rec), flush=True)
    if args.out:
        pd.DataFrame(table).to_parquet(args.out, index=False)
        print(f"table: {args.out}")
    if args.figure:
        from evaluation.figures import figure2

        figure2(data.test_exemplars.numpy(), shown, args.figure, classes=range(8))
        print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
