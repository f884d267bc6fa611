"""Feature importance maps of a trained latent diffusion model (SPEC section 7, with the time-index fix).

LM's recipe: sample with classifier-free guidance over all T steps and, at ~100 recorded steps (dense near the
low-noise end), push the guided score through the decoder's Jacobian; the map is the sum over those steps of
|J s| per pixel, s = sqrt(1 - alpha_bar) * ((1 + w) eps_c - w eps_u). LM indexed alpha_bar by the record index k
instead of the timestep t = T - 1 - k; here the score at step t uses alpha_bar_t, and J is taken at the latent x_t
the score was computed at (LM used the post-step latent). J s is a Jacobian-vector product (torch.func.jvp), one
decoder pass per recorded step, instead of LM's full 2304 x L Jacobian (~3 GB per category).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from models.atomic import atomic_open, atomic_write_text

# LM's record indices k (reverse time), as fractions of T: 20 in [0.1, 0.5], 30 in [0.51, 0.8], 50 in [0.801, 1)
_SEGMENTS = ((0.100, 0.500, 0.20), (0.510, 0.800, 0.30), (0.801, 0.999, 0.50))


def record_timesteps(timesteps: int, n: int = 100) -> torch.Tensor:
    """The timesteps t whose scores enter the map, descending; LM's k = T - 1 - t spacing scaled to n records."""
    ks = []
    for lo, hi, share in _SEGMENTS:
        ks.append(np.linspace(lo * timesteps, hi * timesteps, max(1, round(share * n))))
    k = np.unique(np.clip(np.round(np.concatenate(ks)), 0, timesteps - 1).astype(np.int64))
    return torch.from_numpy(np.sort(timesteps - 1 - k)[::-1].copy())


def feature_importance_maps(ae, ldm, exemplars: torch.Tensor, *, samples: int = 4, records: int = 100,
                            guidance: float = 1.0, seed: int = 59) -> dict:
    """Maps for each exemplar: uint8 (C, 48, 48) -> {'maps': (C, S, 48, 48), 'images': (C, S, 48, 48),
    'timesteps': (R,)} as float32 numpy arrays (images are the final decoded samples of the same trajectories)."""
    from torch.func import jvp

    from models.data import to_float
    from models.diffusion.samplers import make_sampler

    ae.eval()
    ldm.eval()
    n_cls = exemplars.shape[0]
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        cond = ldm.standardize(ae.encode(to_float(exemplars), generator=g))  # (C, L)
    c = cond.repeat_interleave(samples, dim=0)  # (B, L), B = C * S
    stepper = make_sampler("ddpm", ldm.betas)
    record = set(record_timesteps(ldm.timesteps, records).tolist())
    abar = ldm.alphas_cumprod.double()
    x = torch.randn(c.shape, generator=g)  # x_T
    maps = torch.zeros(c.shape[0], 48, 48, dtype=torch.float64)

    def decode(z):  # standardized latent -> image; J includes un-standardizing (SPEC section 7, step 5)
        return ae.decode(ldm.unstandardize(z))[:, 0]  # (B, 48, 48)

    for i, t in enumerate(stepper.timesteps.tolist()):
        with torch.no_grad():
            tt = torch.tensor([t])
            eps = ldm.predict_eps(x, tt, c, guidance=guidance)  # (B, L), guided; eps whatever the model predicts
        if t in record:
            score = (1.0 - abar[t]).sqrt().float() * eps  # the fix: alpha_bar at t, not at k = T - 1 - t
            _, js = jvp(decode, (x,), (score,))  # (B, 48, 48): J(x_t) s_t
            maps += js.detach().abs().double()
        with torch.no_grad():
            x = stepper.step(x, eps, i, generator=g)
    with torch.no_grad():
        images = decode(x)
    shape = (n_cls, samples, 48, 48)
    return {"maps": maps.float().view(shape).numpy(), "images": images.view(shape).numpy(),
            "timesteps": np.array(sorted(record, reverse=True))}


def spearman_compare(maps_a: np.ndarray, maps_b: np.ndarray) -> dict:
    """Spearman rank correlation between two models' maps, per class, of the maps averaged over samples.

    maps_*: (C, S, H, W) for the same classes. Returns {'per_class': [rho], 'mean': float}.
    """
    from scipy.stats import spearmanr

    if maps_a.shape[0] != maps_b.shape[0] or maps_a.shape[2:] != maps_b.shape[2:]:
        raise ValueError(f"maps must cover the same classes and size, got {maps_a.shape} and {maps_b.shape}")
    a = maps_a.mean(axis=1).reshape(maps_a.shape[0], -1)  # (C, H*W)
    b = maps_b.mean(axis=1).reshape(maps_b.shape[0], -1)
    constant = [i for i in range(a.shape[0]) if np.ptp(a[i]) == 0 or np.ptp(b[i]) == 0]
    if constant:  # a decoder that ignores its latent: every pixel's importance is equal and ranks are undefined
        raise ValueError(f"the maps of class(es) {constant} are constant (the decoder does not depend on its "
                         "latent there); a rank correlation is undefined")
    rho = [float(spearmanr(x, y).statistic) for x, y in zip(a, b)]  # one call per class, vectorised inside
    return {"per_class": rho, "mean": float(np.mean(rho))}


def save_heatmaps(exemplars: np.ndarray, maps: np.ndarray, out: str | Path, *, names: Sequence[str] = ()) -> Path:
    """PNG: one row per class: the exemplar, the mean map over it, then each sample's map over its sample."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_cls, n_s = maps.shape[:2]
    ex = exemplars.astype(np.float32) / (255.0 if exemplars.dtype == np.uint8 else 1.0)
    fig, axes = plt.subplots(n_cls, 2 + n_s, figsize=(0.9 * (2 + n_s), 0.95 * n_cls + 0.3), dpi=200, squeeze=False)
    for row in range(n_cls):
        panels = [(ex[row], None), (ex[row], maps[row].mean(0))] + [(ex[row], m) for m in maps[row]]
        for col, (bg, heat) in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(1.0 - bg, cmap="gray", vmin=0, vmax=1)
            if heat is not None:
                ax.imshow(heat / max(heat.max(), 1e-12), cmap="inferno", alpha=0.6, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        if names:
            axes[row, 0].set_ylabel(names[row].split("/")[-1], fontsize=5)
    for col, title in enumerate(["exemplar", "mean map"] + [f"sample {j + 1}" for j in range(n_s)]):
        axes[0, col].set_title(title, fontsize=6)
    fig.subplots_adjust(left=0.03, right=0.99, bottom=0.01, top=0.93, wspace=0.05, hspace=0.08)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def _maps_of(run_dir, classes, imageset, **kw) -> dict:
    from models.run import load_run

    run = load_run(run_dir)
    if run.config.data.dataset != imageset.name:
        raise ValueError(f"{run_dir}: run is on {run.config.data.dataset!r}, the maps use {imageset.name!r}")
    return feature_importance_maps(run.ae, run.ldm, imageset.test_exemplars[classes], **kw)


def maps_for_run(run_dir, *, classes: Sequence[int], samples: int = 4, records: int = 100, guidance: float = 1.0,
                 seed: int = 59, compare=None, out=None, data_dir=None) -> dict:
    """`humanlike maps`: maps of run_dir (and of `compare`) for test classes, saved as .npz + PNG; a summary."""
    from models.data import load_dataset
    from models.run import load_config_of

    config = load_config_of(run_dir)
    imageset = load_dataset(config.data.dataset, data_dir=data_dir or config.data.data_dir)
    n = len(imageset.test_exemplars)
    bad = [c for c in classes if not 0 <= c < n]
    if not classes or bad:
        raise ValueError(f"--classes: need indices in [0, {n}), got {list(classes)}")
    kw = dict(samples=samples, records=records, guidance=guidance, seed=seed)
    out = Path(out) if out else Path(run_dir) / "maps"
    names = [imageset.test_classes[c] for c in classes]
    exemplars = imageset.test_exemplars[classes].numpy()
    summary = {"classes": list(classes), "class_names": names, "out": str(out)}
    results = {"a": _maps_of(run_dir, classes, imageset, **kw)}
    if compare:
        results["b"] = _maps_of(compare, classes, imageset, **kw)
    out.mkdir(parents=True, exist_ok=True)
    for key, res in results.items():
        stem = "maps" if key == "a" else "maps_compare"
        with atomic_open(out / f"{stem}.npz") as f:
            np.savez_compressed(f, classes=np.array(classes), exemplars=exemplars, **res)
        summary[f"{stem}_png"] = str(save_heatmaps(exemplars, res["maps"], out / f"{stem}.png", names=names))
    if compare:
        summary["spearman"] = spearman_compare(results["a"]["maps"], results["b"]["maps"])
        summary["compared_with"] = str(compare)
        atomic_write_text(out / "spearman.json", json.dumps(summary["spearman"], indent=2) + "\n")
    return summary
