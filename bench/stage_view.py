"""Which stage limits a trained run, seen rather than read: one row per test class with its exemplar, then K held-out
human drawings of the class, the same drawings through the run's autoencoder (encode, decode), and K samples of
the run's diffusion model for that exemplar (the sampler, steps and guidance of the run's sample config unless
given). It is the picture of the evaluation's stage ceilings (evaluation/ceilings.py): a run whose
reconstructions look like the drawings but whose samples do not is limited by its diffusion model.

    OMP_WAIT_POLICY=PASSIVE python bench/stage_view.py RUN_DIR --out stages.png [--classes 8 --per-class 4]
"""
from __future__ import annotations

import argparse
from pathlib import Path


def stage_rows(run, data, *, classes: int, per_class: int, sampler: str, steps: int, guidance: float,
               guidance_rule: str, seed: int = 0):
    """(exemplars (C, 48, 48), panels (C, 3 * K + 2, 48, 48)): drawings | gap | reconstructions | gap | samples."""
    import numpy as np
    import torch

    from models.generate import generate
    from models.train import encode_images

    labels = data.test_labels
    if classes > len(data.test_exemplars):
        raise ValueError(f"--classes {classes}: the dataset has {len(data.test_exemplars)} test classes")
    counts = torch.bincount(labels[labels < classes], minlength=classes)
    if int(counts.min()) < per_class:
        raise ValueError(f"--per-class {per_class}: a test class among the first {classes} has {int(counts.min())} "
                         "drawings")
    idx = torch.cat([(labels == c).nonzero()[:per_class, 0] for c in range(classes)])
    drawings = data.test_images[idx].float() / 255.0  # (C * K, 48, 48)
    with torch.no_grad():
        z = encode_images(run.ae, data.test_images[idx], seed=seed)
        recs = run.ae.decode(z)[:, 0].cpu()
    samples = generate(run.ae, run.ldm, data.test_exemplars[:classes], per_class=per_class, sampler=sampler,
                       steps=steps, guidance=guidance, guidance_rule=guidance_rule, seed=seed)  # (C, K, 48, 48)
    gap = torch.zeros(classes, 1, 48, 48)
    panels = torch.cat([drawings.view(classes, per_class, 48, 48), gap, recs.view(classes, per_class, 48, 48), gap,
                        samples], dim=1)
    return data.test_exemplars[:classes].numpy() / 255.0, np.clip(panels.numpy(), 0.0, 1.0)


def main() -> None:
    from models.diffusion.guidance import RULES as GUIDANCE_RULES
    from models.diffusion.samplers import NAMES as DIFFUSION_SAMPLERS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--classes", type=int, default=8)
    p.add_argument("--per-class", type=int, default=4)
    p.add_argument("--sampler", choices=DIFFUSION_SAMPLERS, help="default: the run's sample config's")
    p.add_argument("--steps", type=int)
    p.add_argument("--guidance", type=float)
    p.add_argument("--guidance-rule", choices=GUIDANCE_RULES)
    p.add_argument("--data-dir")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()

    import torch

    from evaluation.run_eval import sampler_steps
    from models.data.load import load_dataset
    from models.plots import write_grid
    from models.run import load_run

    torch.set_num_threads(args.threads)
    run = load_run(args.run_dir)
    s = run.config.sample
    sampler = args.sampler or s.sampler
    steps = sampler_steps(sampler, args.steps, s)
    guidance = s.guidance if args.guidance is None else args.guidance
    rule = args.guidance_rule or s.guidance_rule
    data = load_dataset(run.config.data.dataset, data_dir=args.data_dir)
    exemplars, panels = stage_rows(run, data, classes=args.classes, per_class=args.per_class, sampler=sampler,
                                   steps=steps, guidance=guidance, guidance_rule=rule, seed=run.config.seed)
    write_grid(args.out, exemplars, panels)
    k = args.per_class
    print(f"{args.out}: per row the exemplar, {k} held-out drawings, their reconstructions, {k} samples "
          f"({sampler}{'' if steps is None else f'-{steps}'}, guidance {guidance:g} ({rule}))")


if __name__ == "__main__":
    main()
