"""Probe (docs/recipe.md): does rescaling the guided prediction (Lin et al. 2024, section 3.4) bring the sampled
latents' spread to the real one without losing what guidance buys?

The guided output of the denoiser is rescaled, per sample over the latent dimensions, to the conditional output's
std and mixed in with weight phi: out = phi * rescaled + (1 - phi) * guided. The run is copied (its evaluation
files stay as they are) and evaluated with DDIM-50 and the shipped critics.

    OMP_WAIT_POLICY=PASSIVE python bench/probe_guidance_rescale.py runs/recipe/standard --phi 0 0.7 1 --guidance 1
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--phi", type=float, nargs="+", default=[0.0, 0.7, 1.0])
    ap.add_argument("--guidance", type=float, default=1.0)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()

    import torch

    import models.diffusion.model as diffusion
    from evaluation.critics import load_critics
    from evaluation.run_eval import evaluate_run
    from models.data import load_dataset

    torch.set_num_threads(1)
    plain = diffusion.guided_eps
    data = load_dataset("omniglot", data_dir=args.data_dir)
    critics = load_critics("omniglot")
    for phi in args.phi:
        def rescaled(cond, uncond, w, phi=phi):
            out = plain(cond, uncond, w)
            return phi * out * (cond.std(dim=1, keepdim=True) / out.std(dim=1, keepdim=True)) + (1 - phi) * out

        diffusion.guided_eps = rescaled
        with tempfile.TemporaryDirectory() as tmp:
            run = Path(tmp) / "run"
            run.mkdir()
            for name in ("config.yaml", "rae.pt", "ldm.pt"):
                shutil.copy(Path(args.run_dir) / name, run / name)
            res, _ = evaluate_run(run, sampler="ddim", steps=50, guidance=args.guidance, critics=critics,
                                  imageset=data)
        c = res["stage_ceilings"]
        print(json.dumps({"phi": phi, "guidance": args.guidance, "critics": res["critics_hash"],
                          "originality": round(res["originality"], 4),
                          "recognizability": round(res["recognizability"], 4),
                          "distance": round(res["distance_to_human"], 4),
                          "spread_ratio": round(c["latent_spread_ratio"], 3),
                          "nearest_own_sampled": round(c["nearest_exemplar_sampled"], 3)}), flush=True)
    diffusion.guided_eps = plain


if __name__ == "__main__":
    main()
