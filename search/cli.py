"""The `humanlike` command. Each package registers its own subcommands; this file only wires them.

Heavy modules (torch, ray, optuna) are imported inside the command handlers, so `humanlike --help` is instant.
"""
from __future__ import annotations

import argparse
import os
import sys

# Before torch is imported anywhere: spinning OpenMP threads make torch many times slower when cores are shared
# (concurrent trials, other processes); passive waiting costs nothing on an idle machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def build_parser() -> argparse.ArgumentParser:
    from evaluation import cli as evaluation_cli
    from models import cli as models_cli
    from search import sweep_cli

    parser = argparse.ArgumentParser(
        prog="humanlike",
        description="Search regularized latent diffusion models for human-like one-shot drawing.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (models_cli, evaluation_cli, sweep_cli):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as exc:  # config and data errors: a message, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
