"""Probe (docs/recipe.md): where along the noise levels a trained diffusion model errs, and how its sampled latents
grow along a sampling trajectory. It is the measurement behind "why the paper's diffusion recipe collapses here".

For each run directory:
- the denoiser's error on held-out latents (the test drawings, each with its class exemplar as condition,
  unguided) at noise levels t (999 = pure noise): the eps-MSE, and the RMS error of the x0 it implies,
  x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), in units of the standardized latents;
- one sampling trajectory (the sampler, steps and guidance given; CFG): the spread (std over all entries) of x_t
  and of the x0-prediction at every step, over the spread of the held-out latents.

    OMP_WAIT_POLICY=PASSIVE python bench/probe_denoiser.py RUN_DIR [RUN_DIR ...] [--sampler ddpm] \
        [--guidance 1] [--classes 20 --per-class 10] [--figure probe.png] [--json probe.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

# the noise levels probed, as fractions of the way from t = 0 to t = T - 1 (999 for every preset)
T_FRACTIONS = (0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


def denoiser_error(ldm, x0, cond, *, seed: int = 0) -> list[dict]:
    """Per noise level t: eps-MSE and x0 RMS error of the unguided prediction on standardized x0, cond (N, L)."""
    import torch

    from models.diffusion.guidance import to_x0
    from models.diffusion.schedule import add_noise

    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(x0.shape, generator=g)
    abar = ldm.alphas_cumprod
    rows = []
    for t in sorted({round(f * (ldm.timesteps - 1)) for f in T_FRACTIONS}):
        tt = torch.full((len(x0),), t, dtype=torch.long)
        x_t = add_noise(x0, noise, tt, abar)
        with torch.no_grad():
            eps = ldm.predict_eps(x_t, tt, cond, guidance=0.0)
        x0_hat = to_x0(eps, x_t, abar[t], "eps")
        rows.append({"t": t, "eps_mse": float(((eps - noise) ** 2).mean()),
                     "x0_rmse": float(((x0_hat - x0) ** 2).mean().sqrt()), "x0_gain": float(1 / abar[t].sqrt())})
    return rows


def trajectory(ldm, cond, *, sampler: str, steps: int | None, guidance: float, ref_std: float,
               seed: int = 0) -> list[dict]:
    """The spread of x_t and of the x0-prediction along one guided sampling run (about 100 steps of it, then the
    final latents, t = -1), over ref_std."""
    import torch

    from models.diffusion.guidance import to_x0
    from models.diffusion.samplers import make_sampler

    stepper = make_sampler(sampler, ldm.betas, steps=steps)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(cond.shape, generator=g)
    abar = ldm.alphas_cumprod
    rows = []
    every = -(-len(stepper.timesteps) // 100)  # about 100 rows per trajectory
    with torch.no_grad():
        for i, t in enumerate(stepper.timesteps.tolist()):
            tt = torch.tensor([t])
            eps = ldm.predict_eps(x, tt, cond, guidance=guidance)
            if i % every == 0:
                x0_hat = to_x0(eps, x, abar[t], "eps")
                rows.append({"t": t, "x_std": float(x.std() / ref_std), "x0_std": float(x0_hat.std() / ref_std)})
            x = stepper.step(x, eps, i, generator=g)
    rows.append({"t": -1, "x_std": float(x.std() / ref_std), "x0_std": float(x.std() / ref_std)})
    return rows


def probe(run_dir: Path, data, *, classes: int, per_class: int, sampler: str, steps: int | None,
          guidance: float) -> dict:
    import torch

    from models.run import load_run
    from models.train import encode_images

    run = load_run(run_dir)
    labels = data.test_labels
    idx = torch.cat([(labels == c).nonzero()[:per_class, 0] for c in range(classes)])
    z = encode_images(run.ae, data.test_images[idx], seed=0)
    ex = encode_images(run.ae, data.test_exemplars[:classes], seed=1)
    x0, cond = run.ldm.standardize(z), run.ldm.standardize(ex)[labels[idx]]
    ref = float(x0.std())
    # LM re-estimates the latent statistics at generation on the first test batch (500 drawings in test order;
    # SPEC section 3); ours are the training latents' (SPEC part 0). How far apart are they?
    first = encode_images(run.ae, data.test_images[:500], seed=0)
    lm_stats = {"mean": float(first.mean()), "std": float(first.std())}
    cfg = run.config
    return {"run": str(run_dir), "prediction": cfg.ldm.prediction, "ldm_epochs": cfg.ldm.epochs, "ldm_lr": cfg.ldm.lr,
            "ema": cfg.ldm.ema, "heldout_std": ref, "sampler": sampler, "steps": steps or 1000, "guidance": guidance,
            "latent_stats": {"train": {"mean": float(run.ldm.latent_mean), "std": float(run.ldm.latent_std)},
                             "lm_first_test_batch": lm_stats},
            "error": denoiser_error(run.ldm, x0, cond),
            "trajectory": trajectory(run.ldm, cond, sampler=sampler, steps=steps, guidance=guidance, ref_std=ref)}


def figure(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for r in results:
        label = f"{Path(r['run']).name} ({r['prediction']}, {r['ldm_epochs']} ep)"
        a.plot([e["t"] for e in r["error"]], [e["x0_rmse"] for e in r["error"]], marker="o", ms=3, label=label)
        traj = [e for e in r["trajectory"] if e["t"] >= 0]
        line, = b.plot([e["t"] for e in traj], [e["x0_std"] for e in traj], label=label)
        b.plot([e["t"] for e in traj], [e["x_std"] for e in traj], ls=":", color=line.get_color())
    a.set(xlabel="noise level t (999 = pure noise)", ylabel="RMS error of the x0-prediction (held-out, unguided)",
          yscale="log")
    r0 = results[0]
    b.axhline(1.0, color="grey", lw=0.8)
    b.set(xlabel="t along the trajectory", ylabel="spread of the x0-prediction (solid) and of x_t (dotted)\n"
          "over the held-out latents' spread", yscale="log",
          title=f"{r0['sampler']}-{r0['steps']}, CFG w {r0['guidance']:g}")
    b.invert_xaxis()
    a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--sampler", default="ddpm", choices=["ddpm", "ddim"])
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (default 50); DDPM takes all 1000")
    p.add_argument("--guidance", type=float, default=1.0)
    p.add_argument("--classes", type=int, default=20)
    p.add_argument("--per-class", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--figure", type=Path)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    missing = [str(r) for r in args.runs if not (r / "ldm.pt").is_file()]
    if missing:
        p.error(f"not run directories (no ldm.pt): {missing}")

    import os

    import torch

    from models.data import load_dataset

    torch.set_num_threads(args.threads)
    data = load_dataset("omniglot", data_dir=os.environ.get("HUMANLIKE_DATA_DIR"))
    steps = (args.steps or 50) if args.sampler == "ddim" else None
    results = []
    for run in args.runs:
        r = probe(run, data, classes=args.classes, per_class=args.per_class, sampler=args.sampler, steps=steps,
                  guidance=args.guidance)
        err = {round(e["t"] / r["error"][-1]["t"], 2): e for e in r["error"]}  # by fraction of T - 1
        traj = r["trajectory"]
        print(json.dumps({"run": r["run"], "prediction": r["prediction"], "ldm_epochs": r["ldm_epochs"],
                          **{f"{k}_t{err[f]['t']}": round(err[f][k], 4) for f in (1.0, 0.5, 0.1)
                             for k in ("eps_mse", "x0_rmse")},
                          "final_spread": round(traj[-1]["x_std"], 2),
                          "lm_std_over_train_std": round(r["latent_stats"]["lm_first_test_batch"]["std"]
                                                         / r["latent_stats"]["train"]["std"], 3),
                          "peak_spread": round(max(e["x_std"] for e in traj), 2)}), flush=True)
        results.append(r)
    if args.json:
        args.json.write_text(json.dumps(results) + "\n")
    if args.figure:
        figure(results, args.figure)


if __name__ == "__main__":
    main()
