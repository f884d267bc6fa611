"""A trained run, loaded back from its directory (config.yaml, rae.pt, ldm.pt)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from models.config import TrainConfig, config_from_dict


@dataclass
class TrainedRun:
    config: TrainConfig
    ae: object  # models.rae.RegularizedAE, in eval mode
    ldm: object  # models.diffusion.LatentDiffusion, in eval mode
    run_dir: Path


def load_config_of(run_dir: str | Path) -> TrainConfig:
    import yaml

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a run directory (no config.yaml)")
    return config_from_dict(yaml.safe_load(path.read_text()))


def load_run(run_dir: str | Path, *, device: str = "cpu") -> TrainedRun:
    """Both models of a finished run, on `device` ('auto', 'cpu', 'cuda', 'cuda:N'; the checkpoints hold CPU
    tensors, so any device loads any run); a run whose training has not finished is refused with its progress.

    The default is the CPU because callers that feed the models CPU tensors themselves (maps, benchmarks) expect
    it; evaluation (evaluation/run_eval.py) passes its device.
    """
    from models.checkpoint import load_checkpoint
    from models.device import resolve_device
    from models.train import build_ae, build_ldm

    run_dir = Path(run_dir)
    where = resolve_device(device)
    config = load_config_of(run_dir)
    rae = load_checkpoint(run_dir / "rae.pt", "rae")
    ldm_ckpt = load_checkpoint(run_dir / "ldm.pt", "ldm")
    for name, ckpt, total in (("rae", rae, config.rae.epochs), ("ldm", ldm_ckpt, config.ldm.epochs)):
        if not ckpt["state"]["done"]:
            raise ValueError(f"{run_dir}: {name} training is not finished "
                             f"({ckpt['state']['epoch']}/{total} epochs); run `humanlike train` again to finish it")
    ae = build_ae(config, n_classes=rae["n_classes"])
    ae.load_state_dict(rae["model"])
    ldm = build_ldm(config)
    ldm.load_state_dict(ldm_ckpt.get("ema") or ldm_ckpt["model"])  # the weight average when the run kept one
    return TrainedRun(config=config, ae=ae.to(where).eval(), ldm=ldm.to(where).eval(), run_dir=run_dir)
