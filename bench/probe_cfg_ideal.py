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
    mu, s2 = class_gaussians(z, labels)  # (C, L) class means, (L,) pooled within-class variance
    m, S2 = z.mean(0), z.var(0, unbiased=True)
    precision = (1 + w) / s2 - w / S2
    if (precision <= 0).any():
        raise ValueError(f"guidance {w}: the guided Gaussian is improper in {int((precision <= 0).sum())} dimensions")
    mean = ((1 + w) * mu / s2 - w * m / S2) / precision  # (C, L)
    g = torch.Generator().manual_seed(seed)
    draws = mean.repeat_interleave(per_class, 0) + torch.randn(len(mu) * per_class, z.shape[1], generator=g,
                                                                dtype=torch.float64) * precision.rsqrt()
    return float(draws.std() / z.std())


def class_gaussians(z, labels):
    """Class means (C, L) and the pooled within-class variance per dimension (L,) of latents z (N, L), float64."""
    import torch

    z = z.double()
    classes = labels.unique()
    mu = torch.stack([z[labels == c].mean(0) for c in classes])
    within = torch.cat([z[labels == c] - mu[i] for i, c in enumerate(classes)])
    return mu, within.var(0, unbiased=True)


def mixture_eps(x, abar: float, means, var):
    """The exact eps-prediction at noise level abar (x_t = sqrt(abar) x0 + sqrt(1 - abar) eps) when x0 is drawn from
    an equal-weight mixture of Gaussians N(means[k], diag var): eps = -sqrt(1 - abar) * score of the noised mixture,
    whose components are N(sqrt(abar) means[k], diag(abar var + 1 - abar)). x (B, L), means (K, L), var (L,)."""
    import torch

    v = abar * var + (1.0 - abar)  # (L,)
    centres = abar ** 0.5 * means  # (K, L)
    scale = v.rsqrt()
    resp = torch.softmax(-0.5 * torch.cdist(x * scale, centres * scale).square(), dim=1)  # (B, K)
    return (1.0 - abar) ** 0.5 * (x - resp @ centres) / v


def sampled_ideal_spread(z_train, y_train, z_test, y_test, w: float, *, rule: str = "cfg", steps: int = 50,
                         per_class: int = 19, seed: int = 0, standardize=None, exemplars=None) -> float:
    """Spread over the real test latents' of latents sampled like the trials' own (DDIM, guidance rule at w) with
    an exact denoiser for a world of Gaussian classes. Unconditioned, the data are the mixture of the training
    characters' Gaussians (the denoiser's null branch learns the training latents; the test characters are not in
    it). Conditioned on a test character they are, without exemplars, N(its mean, the test latents' pooled
    within-class variance): a denoiser that knows the class. With exemplars (C_te, L), the latent of each test
    character's exemplar, they are what a perfect one-shot model learns from the training characters when class
    means are Gaussian around m with variance B and drawings around their mean with variance s2 (per dimension):
    N(m + B / (B + s2) (exemplar - m), s2 + B s2 / (B + s2)), the class mean's posterior given one drawing widened
    by its uncertainty. standardize: the model's map into its diffusion space (scalar mean and std), or identity."""
    import torch

    from models.diffusion.guidance import guide
    from models.diffusion.samplers import make_sampler
    from models.diffusion.schedule import alphas_cumprod, scaled_linear_betas

    standardize = standardize or (lambda t: t)
    z_tr, real = standardize(z_train.double()), standardize(z_test.double())
    mu_u, var_u = class_gaussians(z_tr, y_train)
    mu_c, var_c = class_gaussians(real, y_test)
    if exemplars is not None:
        m, between = z_tr.mean(0), mu_u.var(0, unbiased=True)
        shrink = between / (between + var_u)
        mu_c = m + shrink * (standardize(exemplars.double()) - m)
        var_c = var_u * (1.0 + shrink)
    betas = scaled_linear_betas()
    abar_all = alphas_cumprod(betas)
    stepper = make_sampler("ddim", betas, steps=steps)
    cond_means = mu_c.repeat_interleave(per_class, 0)  # (B, L)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(cond_means.shape, generator=g, dtype=torch.float64)
    for i, t in enumerate(stepper.timesteps.tolist()):
        a = float(abar_all[t])
        v_c = a * var_c + (1.0 - a)
        eps_c = (1.0 - a) ** 0.5 * (x - a ** 0.5 * cond_means) / v_c
        eps = eps_c if w == 0 else guide(eps_c, mixture_eps(x, a, mu_u, var_u), w, rule, x=x,
                                         abar=torch.tensor([[a]], dtype=torch.float64), prediction="eps")
        x = stepper.step(x, eps, i)
    return float(x.std() / real.std())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="*", help="run directories or sweep directories")
    ap.add_argument("--weights", nargs="+", type=float, default=[0.0, 1.0, 2.0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default=None, help="Parquet file for the table (one row per run)")
    ap.add_argument("--sampled", action="store_true",
                    help="also sample with DDIM-50 and an exact denoiser whose null branch is the mixture of the "
                         "training characters (columns mixture_<rule>_w<w>); encodes the training drawings too")
    ap.add_argument("--rules", nargs="+", default=["cfg", "projected"], help="guidance rules for --sampled")
    ap.add_argument("--oneshot", action="store_true",
                    help="with --sampled, also condition as a perfect one-shot model would, on each test character's "
                         "exemplar latent (columns oneshot_<rule>_w<w>)")
    ap.add_argument("--figure", default=None,
                    help="PNG: each run's measured spread (CFG w 1) against the ideal ones (needs --sampled columns)")
    ap.add_argument("--table", default=None, help="draw --figure from this earlier --out table instead of the runs")
    args = ap.parse_args()
    if bool(args.runs) == bool(args.table):
        ap.error("give run or sweep directories, or --table with --figure")
    if args.table:
        import pandas as pd

        draw(pd.read_parquet(args.table), args.figure or ap.error("--table is for drawing: give --figure"))
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from probe_guidance import _shown, run_dirs

    runs = run_dirs(args.runs)

    import pandas as pd
    import torch

    from models.data import load_dataset
    from models.run import load_run
    from models.train import encode_images, subset_for

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
        if args.sampled:
            trained_on = subset_for(run.config, data)  # the training characters this run's denoiser learnt
            with torch.no_grad():
                z_train = encode_images(run.ae, trained_on.train_images, seed=0)
                z_ex = encode_images(run.ae, data.test_exemplars, seed=0) if args.oneshot else None
            to_model = lambda t, m=run.ldm: m.standardize(t.float()).double()  # noqa: E731
            for rule in args.rules:
                for w in [w for w in args.weights if w != 0 or rule == args.rules[0]]:  # w = 0: no rule applies
                    row[f"mixture_{rule}_w{w:g}"] = sampled_ideal_spread(
                        z_train, trained_on.train_labels, z, data.test_labels, w, rule=rule, standardize=to_model)
                    if args.oneshot:
                        row[f"oneshot_{rule}_w{w:g}"] = sampled_ideal_spread(
                            z_train, trained_on.train_labels, z, data.test_labels, w, rule=rule, standardize=to_model,
                            exemplars=z_ex)
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.out:
        pd.DataFrame(rows).to_parquet(args.out, index=False)
        print(f"table: {args.out}")
    if args.figure:
        draw(pd.DataFrame(rows), args.figure)


def draw(table, path: str) -> None:
    """Measured spread (the trials' own samples, CFG w 1) against the sampled ideals at w 1, one point per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    need = {"measured_cfg1", "mixture_cfg_w1", "oneshot_cfg_w1"}
    if not need <= set(table.columns):
        raise SystemExit(f"the table lacks {sorted(need - set(table.columns))}: run with --sampled --oneshot "
                         "--weights 0 1 ...")
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(table["oneshot_cfg_w1"], table["measured_cfg1"], s=22, label="ideal one-shot denoiser")
    ax.scatter(table["mixture_cfg_w1"], table["measured_cfg1"], s=22, marker="x",
               label="ideal denoiser that knows the class")
    lo, hi = 0.95, float(max(table["measured_cfg1"].max(), table["oneshot_cfg_w1"].max())) + 0.05
    ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.8, label="measured = ideal")
    ax.axhline(1.15, color="tab:red", lw=0.8, ls="--", label="issue 14's limit (1.15)")
    ax.axvline(1.15, color="tab:red", lw=0.8, ls="--")
    ax.set(xlabel="ideal spread, CFG w 1 (DDIM-50, exact denoiser, Gaussian classes)",
           ylabel="measured spread (trained denoiser, DDIM-50, CFG w 1)", xlim=(lo, hi), ylim=(lo, hi))
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(f"{len(table)} trained models: sampled latents' spread / real", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"figure: {path}")


if __name__ == "__main__":
    main()
