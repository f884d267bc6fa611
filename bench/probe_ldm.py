"""Probe (docs/recipe.md): the diffusion stage trained again on a finished run's autoencoder, with other settings.

For each variant, a new run directory gets a copy of RUN_DIR's rae.pt and RUN_DIR's config with the variant's
ldm.* settings changed; `humanlike train` then skips the finished autoencoder and trains only the diffusion model,
and `humanlike evaluate` scores it (DDIM-50, guidance 1, the shipped critics unless given). Everything but the
changed settings (seed included) is RUN_DIR's, so the variants differ from it and from each other in the diffusion
stage only. Already trained and evaluated variants are read back. One JSON line per variant.

    OMP_WAIT_POLICY=PASSIVE python bench/probe_ldm.py RUN_DIR --out runs/ldmprobe \
        --variant lr3e-3:lr=0.003 --variant lr3e-3-e60:lr=0.003,epochs=60 [--threads 1]

The variant syntax is NAME:KEY=VALUE[,KEY=VALUE...] over the ldm section (epochs, lr, ema, ...).
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


def variant(arg: str) -> tuple[str, dict]:
    name, _, pairs = arg.partition(":")
    if not name or not pairs:
        raise argparse.ArgumentTypeError(f"--variant {arg!r}: expected NAME:KEY=VALUE[,KEY=VALUE...]")
    import yaml

    changes = {}
    for pair in pairs.split(","):
        key, eq, value = pair.partition("=")
        if not eq:
            raise argparse.ArgumentTypeError(f"--variant {arg!r}: {pair!r} is not KEY=VALUE")
        changes[key.strip()] = yaml.safe_load(value)
    return name, changes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--variant", type=variant, action="append", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--guidance", type=float, default=1.0)
    p.add_argument("--critics", default=None)
    args = p.parse_args()

    import yaml

    from models.config import build_config, config_from_dict
    from search.cli import main as humanlike

    source = yaml.safe_load((args.run_dir / "config.yaml").read_text())
    base = config_from_dict(source)  # refuses a directory that is not a run
    if not (args.run_dir / "rae.pt").is_file():
        raise SystemExit(f"{args.run_dir}: no rae.pt (not a trained run)")
    plans = []
    for name, changes in args.variant:
        raw = json.loads(json.dumps(source))
        unknown = set(changes) - set(raw["ldm"])
        if unknown:
            raise SystemExit(f"--variant {name}: unknown ldm settings {sorted(unknown)}")
        raw["ldm"].update(changes)
        build_config(raw)  # a bad value fails here, before any training
        plans.append((name, changes, raw))
    for name, changes, raw in plans:
        out = args.out / name
        out.mkdir(parents=True, exist_ok=True)
        if not (out / "rae.pt").exists():
            shutil.copy(args.run_dir / "rae.pt", out / "rae.pt")
        (out / "probe_config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        rc = humanlike(["train", str(out / "probe_config.yaml"), "--out", str(out), "--threads", str(args.threads),
                        "--no-progress"])
        if rc:
            raise SystemExit(rc)
        result = out / f"evaluation_ddim{args.steps}_w{args.guidance:g}_seed0.json"
        if not result.exists():
            cmd = ["evaluate", str(out), "--sampler", "ddim", "--steps", str(args.steps), "--guidance",
                   str(args.guidance), "--threads", str(args.threads)] + (["--critics", args.critics] if args.critics else [])
            if humanlike(cmd):
                raise SystemExit(f"{name}: evaluation failed")
        ev = json.loads(result.read_text())
        c = ev["stage_ceilings"]
        print(json.dumps({"variant": name, "changes": changes, "base": str(args.run_dir),
                          "seed": base.seed, "critics": ev["critics_hash"], "sampler": f"ddim{args.steps}",
                          "guidance": args.guidance, "originality": round(ev["originality"], 4),
                          "recognizability": round(ev["recognizability"], 4),
                          "distance": round(ev["distance_to_human"], 4),
                          "spread_ratio": round(c["latent_spread_ratio"], 3),
                          "ae_ceiling_recognizability": round(c["ae"]["recognizability"], 4)}), flush=True)


if __name__ == "__main__":
    main()
