"""RAE training throughput per regularizer setting vs the bare network step (CPU, batch 128, 2 threads).

    .venv/bin/python bench/bench_rae.py [--steps 30] [--warmup 5] [--repeats 3] [--settings none,simclr]

A training step = RegularizedAE.loss (augmentation included) + backward + Adam step + after_step, on a fixed
batch of real Omniglot images already in memory (no data loading). The bare step is the same Encoder and Decoder
called directly: forward, per-image SSE, backward, Adam step. Each setting's window is followed by a bare window
in the same process, and the ratio is taken per pair (the machine's speed drifts). Targets: none >= 0.90 x bare;
simclr and barlow >= 0.40 x none. The reference trainer's figures on this CPU: shared/notes/reference_speed.md.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.augment import two_views  # noqa: E402
from models.rae import Decoder, Encoder, RegularizedAE  # noqa: E402

# The paper trainer (LM's train_RAE.py) on this 2-core CPU, batch 128, 2 threads: img/s, medians of 3 processes
# (shared/notes/reference_speed.md, table 0). Only these four settings were timed there.
REFERENCE = {"none": 717, "prototype": 675, "simclr": 335, "barlow": 561, "bare": 752}

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


def rate(step, *, warmup: int, steps: int, batch: int) -> float:
    """Images per second of `step()` over `steps` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - t0)


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


def bare_step(x):
    torch.manual_seed(0)
    enc, dec = Encoder(latent_size=128, width=128), Decoder(latent_size=128, width=128)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-4, weight_decay=1e-5)

    def step():
        opt.zero_grad(set_to_none=True)
        ((dec(enc(x)[1]) - x) ** 2).sum((1, 2, 3)).mean().backward()
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
    args = p.parse_args()
    names = args.settings.split(",")
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        p.error(f"unknown setting(s) {unknown}; choose from {', '.join(SETTINGS)}")
    torch.set_num_threads(args.threads)
    x, labels, exemplars, n_classes = real_batch(args.data_dir, args.batch)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"{args.warmup} warm-up + {args.steps} timed steps, {args.repeats} window(s) per setting")
    kw = dict(warmup=args.warmup, steps=args.steps, batch=args.batch)
    results = {}
    for name in names:
        runs, bares = [], []
        for _ in range(args.repeats):
            runs.append(rate(rae_step(SETTINGS[name], x, labels, exemplars, n_classes), **kw))
            bares.append(rate(bare_step(x), **kw))
        ratio = statistics.median(r / b for r, b in zip(runs, bares))
        results[name] = (statistics.median(runs), statistics.median(bares), ratio)
    g = torch.Generator().manual_seed(0)
    aug_rate = rate(lambda: two_views(x, generator=g), **kw)
    print(f"augmentation, two views of a batch of {args.batch}: {1e3 * args.batch / aug_rate:.1f} ms")
    print(f"{'setting':<18}{'img/s':>8}{'bare img/s':>12}{'/ bare':>8}{'/ none':>8}{'LM img/s':>10}{'x LM':>7}")
    for name, (r, b, ratio) in results.items():
        vs_none = f"{ratio / results['none'][2]:8.2f}" if "none" in results else f"{'-':>8}"
        ref = REFERENCE.get(name)
        vs_ref = f"{ref:10d}{r / ref:7.2f}" if ref else f"{'-':>10}{'-':>7}"
        print(f"{name:<18}{r:8.0f}{b:12.0f}{ratio:8.2f}{vs_none}{vs_ref}")
    print(f"LM's bare network step: {REFERENCE['bare']} img/s (ours above, 'bare img/s', is the same layers in NHWC)")


if __name__ == "__main__":
    main()
