"""Benchmark of one training step of the standard recipe as models/train.py runs it, before and after 2026-12-07.

The LDM step (loss, backward, gradient clipping, AdamW, EMA update; batch 128, latent 64, width 64) and the
RAE's optimizer step alone (Adam over its 40 tensors), each with
  loop:  the optimizer's default on the CPU (a Python loop over the tensors) and per-tensor gradient norms;
  fused: models.train.optimizer_for (the fused kernel) and clip_grad_norm_(foreach=True), what training uses now.
The two are timed in alternating windows in one process, so that a shared machine's load falls on both alike; the
median of the windows and the ratio are printed with the load average.

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

    for name, make in (("LDM training step", ldm_step_fn), ("RAE optimizer step", rae_opt_step_fn)):
        steps = {"loop": make(False), "fused": make(True)}
        times: dict[str, list[float]] = {k: [] for k in steps}
        for fn in steps.values():  # warm-up
            for _ in range(5):
                fn()
        for _ in range(args.windows):
            for k, fn in steps.items():
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    fn()
                times[k].append((time.perf_counter() - t0) / args.steps * 1e3)
        loop, fused = (statistics.median(times[k]) for k in ("loop", "fused"))
        print(f"{name}: loop {loop:.2f} ms, fused {fused:.2f} ms, {loop / fused:.2f}x "
              f"(median of {args.windows} windows of {args.steps}; {args.threads} thread(s), load avg "
              f"{os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
