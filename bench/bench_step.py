"""Benchmark of one training step of the standard recipe as models/train.py runs it, before and after 2026-12-07.

The LDM step (loss, backward, gradient clipping, AdamW, EMA update; batch 128, latent 64, width 64) and the
RAE's optimizer step alone (Adam over its 40 tensors), each with
  loop:  the optimizer's default on the CPU (a Python loop over the tensors) and per-tensor gradient norms;
  fused: models.train.optimizer_for (the fused kernel) and clip_grad_norm_(foreach=True), what training uses now.
And the RAE's whole training step (prototype 1 + Barlow 10: views, loss, backward, fused Adam; batch 128 of real
Omniglot drawings when HUMANLIKE_DATA_DIR holds them, else random strokes) with
  fp32:  rae.precision fp32 (the paper's);
  bf16:  rae.precision bf16 (ours): the encoder's and decoder's layers under autocast in bfloat16.
The two of a pair are timed in alternating windows in one process, so that a shared machine's load falls on both
alike; the median of the windows and the ratio are printed with the load average.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/bench_step.py [--threads 1] [--windows 6] [--steps 40]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the LDM trains on one, LDM_CPU_THREADS)")
    parser.add_argument("--windows", type=int, default=6)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()

    import torch

    from models.config import build_config
    from models.data import to_float
    from models.train import build_ae, build_ldm, ema_of, optimizer_for

    torch.set_num_threads(args.threads)
    cfg = build_config({"preset": "standard", "rae": {"regularizers": {"prototype": 1.0, "barlow": 10.0}}})
    z = torch.randn(4096, cfg.latent_size)
    cond = torch.randn(4096, cfg.latent_size)

    def ldm_step_fn(fused: bool):
        torch.manual_seed(0)
        ldm = build_ldm(cfg)
        ldm.set_latent_stats(z)
        kw = dict(lr=cfg.ldm.lr, eps=1e-5, weight_decay=cfg.ldm.weight_decay)
        opt = optimizer_for(torch.optim.AdamW, ldm.parameters(), "cpu", **kw) if fused else \
            torch.optim.AdamW(ldm.parameters(), **kw)
        ema = ema_of(ldm, cfg.ldm.ema)
        g = torch.Generator().manual_seed(0)

        def step() -> None:
            idx = torch.randint(0, len(z), (cfg.ldm.batch_size,), generator=g)
            loss = ldm.loss(z[idx], cond[idx], generator=g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(ldm.parameters(), cfg.ldm.grad_clip, foreach=fused or None)
            opt.step()
            ema.update_parameters(ldm)
        return step

    def rae_opt_step_fn(fused: bool):
        ae = build_ae(cfg, n_classes=1473)
        for p in ae.parameters():
            p.grad = torch.randn_like(p)
        kw = dict(lr=cfg.rae.lr, weight_decay=cfg.rae.weight_decay)
        opt = optimizer_for(torch.optim.Adam, ae.parameters(), "cpu", **kw) if fused else \
            torch.optim.Adam(ae.parameters(), **kw)
        return opt.step

    def rae_step_fn(bf16: bool):
        torch.manual_seed(0)
        ae = build_ae(cfg, n_classes=n_classes)
        opt = optimizer_for(torch.optim.Adam, ae.parameters(), "cpu", lr=cfg.rae.lr, weight_decay=cfg.rae.weight_decay)
        g = torch.Generator().manual_seed(0)

        def step() -> None:
            idx = torch.randint(0, len(images), (cfg.rae.batch_size,), generator=g)
            x, labels = to_float(images[idx]), image_labels[idx]
            with ae.mixed_precision(torch.bfloat16 if bf16 else None):
                parts = ae.loss(x, labels, to_float(exemplars[labels]), generator=g)
            opt.zero_grad(set_to_none=True)
            parts["total"].backward()
            opt.step()
        return step

    images, image_labels, exemplars, n_classes = _rae_batch_source()
    pairs = (("LDM training step", ldm_step_fn, ("loop", "fused"), args.steps),
             ("RAE optimizer step", rae_opt_step_fn, ("loop", "fused"), args.steps),
             ("RAE training step", rae_step_fn, ("fp32", "bf16"), max(1, args.steps // 4)))
    for name, make, (before, after), n_steps in pairs:
        steps = {before: make(False), after: make(True)}
        times: dict[str, list[float]] = {k: [] for k in steps}
        for fn in steps.values():  # warm-up
            for _ in range(5):
                fn()
        for _ in range(args.windows):
            for k, fn in steps.items():
                t0 = time.perf_counter()
                for _ in range(n_steps):
                    fn()
                times[k].append((time.perf_counter() - t0) / n_steps * 1e3)
        a, b = (statistics.median(times[k]) for k in (before, after))
        print(f"{name}: {before} {a:.2f} ms, {after} {b:.2f} ms, {a / b:.2f}x "
              f"(median of {args.windows} windows of {n_steps}; {args.threads} thread(s), load avg "
              f"{os.getloadavg()[0]:.1f})")


def _rae_batch_source():
    """(uint8 images, labels, exemplars, number of classes): the Omniglot training set when HUMANLIKE_DATA_DIR
    has it, else 1,473 classes of random strokes (the timing depends on the shapes, hardly on the pixels)."""
    import torch

    data_dir = os.environ.get("HUMANLIKE_DATA_DIR")
    if data_dir and os.path.isdir(os.path.join(data_dir, "omniglot")):
        from models.data import load_dataset

        data = load_dataset("omniglot", data_dir=data_dir)
        return data.train_images, data.train_labels, data.train_exemplars, len(data.train_classes)
    g = torch.Generator().manual_seed(0)
    images = ((torch.rand(4096, 48, 48, generator=g) > 0.85) * 255).to(torch.uint8)
    return images, torch.randint(0, 1473, (4096,), generator=g), images[:1473], 1473


if __name__ == "__main__":
    main()
