"""RAE training throughput per regularizer setting vs the bare network step (CPU, batch 128, 2 threads).

    .venv/bin/python bench/bench_rae.py [--steps 30] [--warmup 5] [--repeats 3] [--settings none,simclr]

A training step = RegularizedAE.loss (augmentation included) + backward + Adam step + after_step, on a fixed
batch of real Omniglot images already in memory (no data loading). The bare step is the same Encoder and Decoder
called directly: forward, per-image SSE, backward, Adam step; it is timed twice, in our NHWC layout and in LM's
NCHW layout (= LM's network step). Each setting's window is followed by the two bare windows in the same process
and ratios are taken per triple (the machine's speed drifts). Targets: none >= 0.90 x bare; simclr and barlow
>= 0.40 x none. The reference trainer's figures on this CPU: shared/notes/reference_speed.md; 'x LM' compares our
throughput relative to LM's network step with LM's own, so it holds on a busy machine too.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.augment import two_views  # noqa: E402
from models.rae import Decoder, Encoder, RegularizedAE  # noqa: E402

# The paper trainer (LM's train_RAE.py) on this 2-core CPU, batch 128, 2 threads (shared/notes/reference_speed.md,
# table 0, medians of 3 processes): img/s, and its throughput / its own bare network step in the same process.
# Only these four settings were timed there.
REFERENCE = {"none": (717, 0.96), "prototype": (675, 0.88), "simclr": (335, 0.48), "barlow": (561, 0.74)}
REFERENCE_BARE = 752

SETTINGS = {
    "none": {}, "kl": {"kl": 1.0}, "vq": {"vq": 1.0}, "classification": {"classification": 1.0},
    "prototype": {"prototype": 1.0}, "simclr": {"simclr": 1.0}, "barlow": {"barlow": 1.0},
    "prototype+barlow": {"prototype": 1.0, "barlow": 10.0},
}


def real_batch(data_dir: Path, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """(x, labels, exemplars, n_classes): the first `batch` Omniglot training images, their exemplars."""
    from models.data import load_dataset, to_float

    data = load_dataset("omniglot", data_dir=data_dir)
    labels = data.train_labels[:batch]
    return (to_float(data.train_images[:batch]), labels, to_float(data.train_exemplars[labels]),
            len(data.train_classes))


def rate(step, *, warmup: int, steps: int, batch: int, clock=time.perf_counter) -> float:
    """Images per second of `step()` over `steps` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
    t0 = clock()
    for _ in range(steps):
        step()
    return steps * batch / (clock() - t0)


def rae_step(weights: dict, x, labels, exemplars, n_classes: int):
    torch.manual_seed(0)
    model = RegularizedAE(latent_size=128, width=128, weights=weights, n_classes=n_classes).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-5)  # LM's RAE optimizer
    g = torch.Generator().manual_seed(0)

    def step():
        opt.zero_grad(set_to_none=True)
        model.loss(x, labels, exemplars, generator=g)["total"].backward()
        opt.step()
        model.after_step()
    return step


def bare_step(x, *, lm_layout: bool = False):
    """The bare network step; lm_layout=True runs the same layers in NCHW, i.e. exactly LM's network."""
    torch.manual_seed(0)
    enc, dec = Encoder(latent_size=128, width=128), Decoder(latent_size=128, width=128)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-4, weight_decay=1e-5)
    if lm_layout:
        enc.to(memory_format=torch.contiguous_format), dec.to(memory_format=torch.contiguous_format)
        net = lambda x: dec.net(enc.head(enc.convs(x))[:, :, None, None])  # noqa: E731  (bypass the NHWC forwards)
    else:
        net = lambda x: dec(enc(x)[1])  # noqa: E731

    def step():
        opt.zero_grad(set_to_none=True)
        ((net(x) - x) ** 2).sum((1, 2, 3)).mean().backward()
        opt.step()
    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=1, help="windows per setting; medians are printed")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--settings", default=",".join(SETTINGS), help=f"comma list of {', '.join(SETTINGS)}")
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="cpu = this process's CPU time: with --threads 1 it ignores time lost to other processes")
    args = p.parse_args()
    names = args.settings.split(",")
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        p.error(f"unknown setting(s) {unknown}; choose from {', '.join(SETTINGS)}")
    torch.set_num_threads(args.threads)
    x, labels, exemplars, n_classes = real_batch(args.data_dir, args.batch)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, {args.warmup} warm-up + "
          f"{args.steps} timed steps, {args.repeats} window(s) per setting, {args.clock} clock, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (if above the thread count, img/s are depressed: "
          "compare ratios)")
    kw = dict(warmup=args.warmup, steps=args.steps, batch=args.batch,
              clock=time.process_time if args.clock == "cpu" else time.perf_counter)
    rows = {}
    for name in names:
        runs = []
        for _ in range(args.repeats):  # each window is paired with bare windows right after it
            r = rate(rae_step(SETTINGS[name], x, labels, exemplars, n_classes), **kw)
            runs.append((r, rate(bare_step(x), **kw), rate(bare_step(x, lm_layout=True), **kw)))
        rows[name] = [statistics.median(col) for col in zip(*runs)] + [
            statistics.median(r / b for r, b, _ in runs), statistics.median(r / b for r, _, b in runs)]
    g = torch.Generator().manual_seed(0)
    aug = rate(lambda: two_views(x, generator=g), **kw)
    print(f"augmentation, two views of a batch of {args.batch}: {1e3 * args.batch / aug:.1f} ms")
    print(f"{'setting':<18}{'img/s':>7}{'bare':>7}{'/bare':>7}{'/none':>7}{'LM-layout bare':>16}{'/it':>6}"
          f"{'LM /its bare':>14}{'x LM':>7}")
    for name, (r, b, b_lm, ratio, ratio_lm) in rows.items():
        vs_none = f"{ratio / rows['none'][3]:7.2f}" if "none" in rows else f"{'-':>7}"
        lm = f"{REFERENCE[name][1]:14.2f}{ratio_lm / REFERENCE[name][1]:7.2f}" if name in REFERENCE else ""
        print(f"{name:<18}{r:7.0f}{b:7.0f}{ratio:7.2f}{vs_none}{b_lm:16.0f}{ratio_lm:6.2f}{lm}")
    print("bare = our network step (NHWC); LM-layout bare = the same layers in NCHW, i.e. LM's network step; "
          "x LM = (ours / LM-layout bare) / (LM trainer / its bare), both measured in one process each.\n"
          f"LM on a quiet machine (reference_speed.md): "
          + ", ".join(f"{k} {v[0]} img/s" for k, v in REFERENCE.items()) + f", bare {REFERENCE_BARE} img/s")


if __name__ == "__main__":
    main()
