"""The run's own figures: training curves and a grid of exemplars with generated samples."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def save_curves(run_dir: Path, rae_curve: list[dict], ldm_curve: list[dict]) -> None:
    """curves.csv (one row per stage and epoch) and curves.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({k for row in rae_curve + ldm_curve for k in row} - {"epoch"})
    with open(run_dir / "curves.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["stage", "epoch", *keys])
        writer.writeheader()
        for stage, curve in (("rae", rae_curve), ("ldm", ldm_curve)):
            for row in curve:
                writer.writerow({"stage": stage, **row})

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
    epochs = [r["epoch"] for r in rae_curve]
    ax1.plot(epochs, [r["rec"] for r in rae_curve], label="train (augmented target)")
    ax1.plot(epochs, [r["test_rec"] for r in rae_curve], label="held-out test classes")
    ax1.set(title="RAE reconstruction (SSE / image)", xlabel="epoch")
    ax1.legend(frameon=False)
    ax2.plot([r["epoch"] for r in ldm_curve], [r["loss"] for r in ldm_curve])
    ax2.set(title="LDM epsilon MSE", xlabel="epoch", yscale="log")
    fig.tight_layout()
    fig.savefig(run_dir / "curves.png", dpi=120)
    plt.close(fig)


def save_sample_grid(cfg, data, ae, ldm, path: Path) -> None:
    """Row per test class: its exemplar (left, framed by a gap) then generated samples."""
    from models.generate import generate

    n = min(cfg.sample.grid_classes, len(data.test_exemplars))
    exemplars = data.test_exemplars[:n].cpu()  # the run's data may be on its GPU; generate returns CPU samples
    samples = generate(ae, ldm, exemplars, per_class=cfg.sample.grid_samples, sampler=cfg.sample.sampler,
                       steps=cfg.sample.steps, guidance=cfg.sample.guidance,
                       guidance_rule=cfg.sample.guidance_rule, seed=cfg.seed).numpy()
    write_grid(path, exemplars.numpy() / 255.0, samples)


def write_grid(path: Path, exemplars: np.ndarray, samples: np.ndarray, pad: int = 2) -> None:
    """exemplars (C, H, W), samples (C, K, H, W), floats in [0, 1] with ink = 1 -> PNG, ink black on white."""
    from PIL import Image

    c, k, h, w = samples.shape
    canvas = np.zeros((c * (h + pad) + pad, (k + 1) * (w + pad) + 3 * pad), dtype=np.float32)
    for i in range(c):
        y = pad + i * (h + pad)
        canvas[y : y + h, pad : pad + w] = exemplars[i]
        for j in range(k):
            x = 4 * pad + (j + 1) * (w + pad)
            canvas[y : y + h, x : x + w] = samples[i, j]
    image = Image.fromarray(np.uint8(255 - np.clip(canvas, 0, 1) * 255))
    image = image.resize((image.width * 2, image.height * 2), Image.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
