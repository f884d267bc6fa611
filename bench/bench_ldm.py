"""Benchmark of the latent diffusion model on the CPU (SPEC section 3, part 0).

Prints
  1. training throughput (samples/s): loss + backward + AdamW step, batch 128, L = 64 and 128;
  2. the denoiser forward alone (latents/s) at the sampling batch;
  3. sampling wall time for 150 * 19 = 2850 latents at L = 64 (one Omniglot evaluation), with classifier-free
     guidance w = 1 (a doubled batch of 5700): DDPM-1000 (the default), DDIM-50, DDIM-100.

The model is untrained (weights do not change the cost). The machine may be shared: the load average is printed
with every line, training reports the best and median of 5 windows, and each sampling time is printed beside
the time its denoiser calls alone would take at the best measured forward rate.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/bench_ldm.py [--threads 2] [--skip-ddpm] [--n 2850]

On a machine shared with other jobs, OpenMP's default spin-waiting makes 2-thread torch 5-15x slower here;
OMP_WAIT_POLICY=PASSIVE (set before torch is imported) removes most of that.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time


def _load() -> str:
    return "load avg %.1f %.1f %.1f" % os.getloadavg()


def bench_training(torch, LatentDiffusion, latent_size: int, batch: int = 128, windows: int = 5,
                   steps: int = 10) -> tuple[float, float]:
    """(best, median) samples/s over `windows` windows of `steps` steps, after 5 warm-up steps."""
    model = LatentDiffusion(latent_size=latent_size)
    z = torch.randn(4096, latent_size)
    model.set_latent_stats(z)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, eps=1e-5)  # LM's optimizer (SPEC section 3)
    g = torch.Generator().manual_seed(0)

    def one_step(i: int) -> None:
        idx = torch.arange(i * batch, (i + 1) * batch) % z.shape[0]
        loss = model.loss(z[idx], z[idx.flip(0)], generator=g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(5):  # warm-up
        one_step(i)
    rates = []
    for _ in range(windows):
        t0 = time.perf_counter()
        for i in range(steps):
            one_step(i)
        rates.append(steps * batch / (time.perf_counter() - t0))
    return max(rates), statistics.median(rates)


def bench_forward(torch, LatentDiffusion, batch: int, latent_size: int = 64, reps: int = 10) -> float:
    model = LatentDiffusion(latent_size=latent_size).eval()
    x, c, t = torch.randn(batch, latent_size), torch.randn(batch, latent_size), torch.tensor([500])
    with torch.inference_mode():
        model.denoiser(x, t, c)
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            model.denoiser(x, t, c)
            best = min(best, time.perf_counter() - t0)
    return batch / best


def bench_sampling(torch, LatentDiffusion, n: int, sampler: str, steps: int | None, latent_size: int = 64) -> float:
    model = LatentDiffusion(latent_size=latent_size).eval()
    model.set_latent_stats(torch.randn(4096, latent_size))
    cond = torch.randn(n, latent_size)
    t0 = time.perf_counter()
    model.sample(cond, sampler=sampler, steps=steps, guidance=1.0, generator=torch.Generator().manual_seed(0))
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n", type=int, default=150 * 19, help="latents to sample (default 150 * 19)")
    parser.add_argument("--skip-ddpm", action="store_true", help="skip the 1000-step DDPM timing")
    args = parser.parse_args()

    import torch

    from models.diffusion import LatentDiffusion

    torch.set_num_threads(args.threads)
    policy = os.environ.get("OMP_WAIT_POLICY", "unset")  # PASSIVE is many times faster on a busy machine
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, OMP_WAIT_POLICY={policy}, {_load()}")
    for latent_size in (64, 128):
        best, median = bench_training(torch, LatentDiffusion, latent_size)
        print(f"train  L={latent_size:<4} batch 128: best {best:6.0f}, median {median:6.0f} samples/s   ({_load()})")
    batch = 2 * args.n  # CFG doubles the batch
    rate = bench_forward(torch, LatentDiffusion, batch)
    print(f"denoiser forward, batch {batch}, L=64: {rate:8.0f} latents/s (best of 10)   ({_load()})")
    runs = [("ddim", 50), ("ddim", 100)] + ([] if args.skip_ddpm else [("ddpm", None)])
    for sampler, steps in runs:
        n_steps = steps or 1000
        seconds = bench_sampling(torch, LatentDiffusion, args.n, sampler, steps)
        floor = n_steps * batch / rate  # the same steps at the best forward rate: what an idle machine gives
        label = f"{sampler.upper()}-{n_steps}"
        print(f"sample {args.n} latents, L=64, CFG w=1, {label:9}: {seconds:7.1f} s "
              f"(forward-bound estimate {floor:6.1f} s)   ({_load()})")

if __name__ == "__main__":
    main()
