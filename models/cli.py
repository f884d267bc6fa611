"""`humanlike train CONFIG.yaml --out DIR`: registered by search/cli.py."""
from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train one RAE then its LDM; running it again continues an interrupted run",
        description="Train the regularized autoencoder, then the latent diffusion model, into --out. "
        "Killed and started again with the same command, it continues from the last finished epoch.",
    )
    p.add_argument("config", help="YAML config (a preset plus overrides, e.g. examples/quick.yaml)")
    p.add_argument("--out", required=True, help="run directory (checkpoints, config, curves, samples.png)")
    p.add_argument("--data-dir", help="dataset directory (default: $HUMANLIKE_DATA_DIR, then the download cache)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: the config's device, auto: a GPU if "
                   "torch sees one); a run may be continued on another device")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    from models.config import load_config

    overrides = {}
    if args.data_dir:
        overrides["data.data_dir"] = args.data_dir
    if args.threads:
        overrides["threads"] = args.threads
    if args.device:
        overrides["device"] = args.device
    cfg = load_config(args.config, overrides)  # every config error stops here, before data or torch load

    from models.train import train_run

    summary = train_run(cfg, args.out, progress=not args.no_progress and sys.stderr.isatty())
    rae, ldm = summary.rae, summary.ldm
    print(f"run: {summary.run_dir}")
    print(f"rae: {rae['epoch']} epochs, held-out reconstruction {rae['curve'][-1]['test_rec']:.2f}, "
          f"{rae['wall_s']:.0f} s")
    print(f"ldm: {ldm['epoch']} epochs, loss {ldm['curve'][-1]['loss']:.4f}, {ldm['wall_s']:.0f} s")
    print(f"samples: {summary.run_dir / 'samples.png'}")
    return 0
