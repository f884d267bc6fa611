"""Benchmark: what two processes on two cores cost each other, per kind of work (why 2 trials are not 2x).

For each workload it measures the rate of
  alone    one process, torch on 1 thread;
  pair     two processes at once, 1 thread each (what a sweep with max_concurrent 2 does);
  threads  one process, torch on 2 threads (what a sweep with max_concurrent 1 does);
and prints pair/alone (2.0 if the processes cost each other nothing), threads/alone, and pair/threads: the
speed-up that running two trials at once buys over one trial on both cores, for that kind of work.

Workloads: two probes of the machine, `compute` (a 128x128 matmul loop that lives in L1/L2: pure arithmetic) and
`memory` (adds of 32 MB arrays: pure memory bandwidth), then a trial's own stages on one batch of real Omniglot
images: `rae` (a prototype-regularized RAE training step, batch 128), `ldm` (a latent diffusion training step,
batch 128, L = 64) and `sample` (one classifier-free-guided denoiser call at the evaluation's batch of 5,700).

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/bench_contention.py [--seconds 8] [--workloads compute,memory]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ("compute", "memory", "rae", "ldm", "sample")


def make_step(name: str, data_dir: str):
    """A zero-argument function doing one unit of the workload."""
    import torch

    if name == "compute":
        a = torch.randn(128, 128) / 128

        def step():
            b = a
            for _ in range(200):
                b = torch.mm(b, a).clamp_(-1, 1)
        return step
    if name == "memory":
        x, y, out = torch.rand(8 << 20), torch.rand(8 << 20), torch.empty(8 << 20)  # 32 MB each
        return lambda: torch.add(x, y, out=out)
    if name == "rae":
        sys.path.insert(0, str(ROOT / "bench"))
        from bench_rae import rae_step, real_batch

        x, labels, exemplars, n_classes = real_batch(Path(data_dir), 128)
        return rae_step({"prototype": 1.0}, x, labels, exemplars, n_classes)
    from models.diffusion.model import LatentDiffusion

    torch.manual_seed(0)
    model = LatentDiffusion(latent_size=64)
    z = torch.randn(4096, 64)
    model.set_latent_stats(z)
    if name == "ldm":
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, eps=1e-5)
        g = torch.Generator().manual_seed(0)

        def step():
            loss = model.loss(z[:128], z[128:256], generator=g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step
    if name == "sample":
        model.eval()
        x, c, t = torch.randn(5700, 64), torch.randn(5700, 64), torch.tensor([500])

        def step():
            with torch.inference_mode():
                model.denoiser(x, t, c)
        return step
    raise ValueError(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}")


def _worker(name: str, threads: int, seconds: float, data_dir: str, barrier, out) -> None:
    import torch

    torch.set_num_threads(threads)
    step = make_step(name, data_dir)
    for _ in range(3):
        step()
    barrier.wait()  # both processes of a pair start their window together
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    out.put(n / (time.perf_counter() - t0))


def measure(name: str, processes: int, threads: int, seconds: float, data_dir: str) -> list[float]:
    """Steps per second of each of `processes` processes running the workload at once."""
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(name, threads, seconds, data_dir, barrier, out))
             for _ in range(processes)]
    for p in procs:
        p.start()
    rates = []
    while len(rates) < processes:
        try:
            rates.append(out.get(timeout=2))
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead:
                for p in procs:
                    p.kill()
                raise RuntimeError(f"{name}: a worker exited with {dead[0]}") from None
    for p in procs:
        p.join()
        if p.exitcode:
            raise RuntimeError(f"{name}: a worker exited with {p.exitcode}")
    return rates


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=8.0, help="timed window per process")
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    args = p.parse_args(argv)
    names = [w for w in args.workloads.split(",") if w]
    unknown = sorted(set(names) - set(WORKLOADS))
    if unknown:
        p.error(f"unknown workloads {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    sys.path.insert(0, str(ROOT))
    print(f"cores {os.cpu_count()}, load avg %.1f %.1f %.1f at start" % os.getloadavg())
    print(f"{'workload':<9} {'alone/s':>9} {'pair/s':>9} {'2thr/s':>9}  {'pair/alone':>10} {'2thr/alone':>10} "
          f"{'pair/2thr':>9}")
    for name in names:
        alone = measure(name, 1, 1, args.seconds, args.data_dir)[0]
        pair = sum(measure(name, 2, 1, args.seconds, args.data_dir))
        two = measure(name, 1, 2, args.seconds, args.data_dir)[0]
        print(f"{name:<9} {alone:9.2f} {pair:9.2f} {two:9.2f}  {pair / alone:10.2f} {two / alone:10.2f} "
              f"{pair / two:9.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
