"""Train one run: the regularized autoencoder, then the latent diffusion model on its frozen latents.

Reads top to bottom: `train_run` loads the data, runs `train_rae` and `train_ldm`, and draws the sample grid.
Each stage checkpoints at every epoch end (atomically) into the run directory, and every random draw of an epoch
comes from a generator seeded by (seed, stage, epoch), so a run killed at any moment and started again with the
same command continues from its last finished epoch and ends with the same weights as an uninterrupted run.

The run computes on `cfg.device` (models/device.py), resolved once: the models and the training tensors (uint8
images, labels, exemplars) move there once, and the epoch generators live there. Checkpoints always hold CPU
tensors, so a run may continue, or be evaluated, on another device (the same seed gives the same draws only on
the same kind of device).
"""
from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from models.atomic import atomic_write_text
from models.checkpoint import load_checkpoint, save_checkpoint
from models.config import ConfigError, TrainConfig, config_difference, config_from_dict
from models.device import cpu_threads, native_bf16
from models.schedules import make_scheduler
from models.data import ImageSet, to_float

# reporter(stage, metrics): called after every epoch of each stage ('rae' or 'ldm') and once with 'rae_done'.
# It may raise (for example search's TrialPruned) to stop the run; the checkpoints written so far stay valid.
Reporter = Callable[[str, dict[str, Any]], None]

STAGE_SEED = {"rae": 1, "ldm": 2, "sample": 3}
# The LDM's training loop on the CPU uses at most this many torch threads, whatever the run's `threads`: its
# matrices are too small to split (one thread 1.7x faster than two, bench/bench_contention.py); the encoding of
# the training set before it and sampling after it use every thread the run has.
LDM_CPU_THREADS = 1


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite."""


@dataclass
class RunSummary:
    run_dir: Path
    rae: dict[str, Any] = field(default_factory=dict)
    ldm: dict[str, Any] = field(default_factory=dict)


def epoch_generator(seed: int, stage: str, epoch: int, device: torch.device | str = "cpu") -> torch.Generator:
    """One generator per (seed, stage, epoch): resuming at an epoch boundary replays exactly the same draws.

    It lives on the run's device: a draw with generator=g makes its tensor on g's device (models/augment.py,
    models/regularizers/kl.py, models/diffusion/model.py and _batches all pass device=g.device)."""
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + STAGE_SEED[stage] * 10_007 + epoch)


def prepare_run_dir(cfg: TrainConfig, run_dir: Path) -> None:
    """Create the run directory, or check that an existing one was started with the same config."""
    import yaml

    run_dir.mkdir(parents=True, exist_ok=True)
    saved = run_dir / "config.yaml"
    if saved.exists():
        diff = config_difference(config_from_dict(yaml.safe_load(saved.read_text())), cfg)
        if diff:
            raise ConfigError(
                f"{run_dir} holds a run with another config ({diff}); use a new --out directory to train this one"
            )
    else:
        atomic_write_text(saved, yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def build_ae(cfg: TrainConfig, n_classes: int):
    from models.rae import RegularizedAE

    return RegularizedAE(
        latent_size=cfg.latent_size,
        width=cfg.rae.width,
        weights=cfg.rae.active,
        n_classes=n_classes,
        augmentation=cfg.rae.augmentation,
        regularizer_options=cfg.rae.options,
    )


def build_ldm(cfg: TrainConfig):
    from models.diffusion import LatentDiffusion

    return LatentDiffusion(
        latent_size=cfg.latent_size,
        timesteps=cfg.ldm.timesteps,
        drop_prob=cfg.ldm.drop_prob,
        width=cfg.ldm.width,
        prediction=cfg.ldm.prediction,
        loss_space=cfg.ldm.loss_space,
    )


def optimizer_for(cls: type[torch.optim.Optimizer], params, device: torch.device | str,
                  **kwargs) -> torch.optim.Optimizer:
    """`cls` (Adam or AdamW) with its fused kernel on the CPU and CUDA: one call updates every tensor, where the default
    on the CPU loops over them in Python (the LDM's whole training step 1.11-1.20x faster, the RAE's optimizer step
    2.6x; bench/bench_step.py). The same update up to float rounding; since 2026-12-07. A run resumed from a
    checkpoint written before keeps the loop (the saved optimizer settings win), so that one run never mixes the two."""
    return cls(params, fused=torch.device(device).type in ("cpu", "cuda"), **kwargs)


def _batches(n: int, batch_size: int, generator: torch.Generator):
    """Shuffled index batches; the last incomplete batch is dropped as in LM (drop_last)."""
    order = torch.randperm(n, generator=generator, device=generator.device)
    for start in range(0, n - batch_size + 1, batch_size):
        yield order[start : start + batch_size]


def _check_finite(value: torch.Tensor, stage: str, epoch: int, step: int) -> None:
    if not torch.isfinite(value):
        raise TrainingDiverged(f"{stage} loss became {value.item()} at epoch {epoch + 1}, step {step}")


def _progress(total: int, desc: str, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="epoch", disable=not enabled, dynamic_ncols=True)


# --- stage 1: the regularized autoencoder ----------------------------------------------------------------------


@torch.no_grad()
def reconstruction_error(ae, images: torch.Tensor, batch_size: int = 512) -> float:
    """Per-image SSE averaged over `images` (uint8), in eval mode: the held-out reconstruction loss."""
    was_training = ae.training
    ae.eval()
    total = 0.0
    for start in range(0, len(images), batch_size):
        x = to_float(images[start : start + batch_size])
        total += ((ae.decode(ae.encode(x)) - x) ** 2).sum().item()
    ae.train(was_training)
    return total / max(len(images), 1)


def train_rae(cfg: TrainConfig, data: ImageSet, run_dir: Path, *, progress: bool = True,
              reporter: Reporter | None = None):
    path = run_dir / "rae.pt"
    device = data.train_images.device  # train_run put the data on the run's device
    torch.manual_seed(cfg.seed)  # the initial weights are part of "same seed, same result"
    ae = build_ae(cfg, n_classes=len(data.train_classes)).to(device)  # initialized on the CPU: same on any device
    optimizer = optimizer_for(torch.optim.Adam, ae.parameters(), device, lr=cfg.rae.lr,
                              weight_decay=cfg.rae.weight_decay)
    scheduler = make_scheduler(optimizer, total_steps=cfg.rae.epochs * (len(data.train_images) // cfg.rae.batch_size),
                               schedule=cfg.rae.lr_schedule, warmup=cfg.rae.warmup)
    state = {"epoch": 0, "curve": [], "wall_s": 0.0, "done": False}
    if path.exists():
        ckpt = load_checkpoint(path, "rae")
        ae.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if "scheduler" in ckpt:  # runs written before schedules existed trained at a constant rate
            scheduler.load_state_dict(ckpt["scheduler"])
        state = ckpt["state"]
    if state["done"]:
        return ae.eval(), state

    held_out = data.test_images[:1024]
    autocast_dtype = {"fp32": None, "bf16": torch.bfloat16}[cfg.rae.precision]
    if autocast_dtype is not None and not native_bf16(device):
        warnings.warn(f"rae.precision bf16: {device} has no bfloat16 in hardware (a CPU without AVX512-BF16 or AMX): "
                      "the RAE will likely train slower than in fp32", stacklevel=2)
    bar = _progress(cfg.rae.epochs, "rae", state["epoch"], progress)
    ae.train()
    for epoch in range(state["epoch"], cfg.rae.epochs):
        t0 = time.perf_counter()
        g = epoch_generator(cfg.seed, "rae", epoch, device)
        torch.manual_seed(g.initial_seed())  # any draw a module makes from the global generator is replayed too
        sums: dict[str, torch.Tensor] = {}
        steps = 0
        for idx in _batches(len(data.train_images), cfg.rae.batch_size, g):
            labels = data.train_labels[idx]
            x = to_float(data.train_images[idx])  # (B, 1, 48, 48)
            exemplars = to_float(data.train_exemplars[labels])  # (B, 1, 48, 48)
            with ae.mixed_precision(autocast_dtype):
                parts = ae.loss(x, labels, exemplars, generator=g)
            _check_finite(parts["total"].detach(), "rae", epoch, steps)
            optimizer.zero_grad(set_to_none=True)
            parts["total"].backward()
            optimizer.step()
            scheduler.step()
            ae.after_step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v.detach()
            steps += 1
        row = {"epoch": epoch + 1, **{k: float(v) / max(steps, 1) for k, v in sums.items()}}
        row["test_rec"] = reconstruction_error(ae, held_out)
        row["lr"] = optimizer.param_groups[0]["lr"]
        state = {
            "epoch": epoch + 1,
            "curve": state["curve"] + [row],
            "wall_s": state["wall_s"] + time.perf_counter() - t0,
            "done": epoch + 1 == cfg.rae.epochs,
        }
        save_checkpoint(path, "rae", {"model": ae.state_dict(), "optimizer": optimizer.state_dict(),
                                      "scheduler": scheduler.state_dict(), "state": state,
                                      "n_classes": len(data.train_classes)})
        bar.update(1)
        bar.set_postfix(rec=f"{row['rec']:.1f}", test=f"{row['test_rec']:.1f}")
        if reporter:
            reporter("rae", row)
    bar.close()
    return ae.eval(), state


# --- stage 2: the latent diffusion model ----------------------------------------------------------------------


@torch.no_grad()
def encode_images(ae, images: torch.Tensor, seed: int, batch_size: int = 512) -> torch.Tensor:
    """Latents of uint8 images, (N, L). Seeded because a KL autoencoder's latent is a sample (SPEC section 2)."""
    ae.eval()
    torch.manual_seed(seed)
    return torch.cat([ae.encode(to_float(images[s : s + batch_size])) for s in range(0, len(images), batch_size)])


def train_ldm(cfg: TrainConfig, data: ImageSet, ae, run_dir: Path, *, progress: bool = True,
              reporter: Reporter | None = None):
    path = run_dir / "ldm.pt"
    device = data.train_images.device
    torch.manual_seed(cfg.seed + 1)
    ldm = build_ldm(cfg).to(device)
    optimizer = optimizer_for(torch.optim.AdamW, ldm.parameters(), device, lr=cfg.ldm.lr, eps=1e-5,
                              weight_decay=cfg.ldm.weight_decay)
    scheduler = make_scheduler(optimizer, total_steps=cfg.ldm.epochs * (len(data.train_images) // cfg.ldm.batch_size),
                               schedule=cfg.ldm.lr_schedule, warmup=cfg.ldm.warmup)
    state = {"epoch": 0, "curve": [], "wall_s": 0.0, "done": False}
    t0 = time.perf_counter()
    z = encode_images(ae, data.train_images, seed=cfg.seed)  # (N, L)
    cond = encode_images(ae, data.train_exemplars, seed=cfg.seed + 1)[data.train_labels]  # (N, L)
    encode_s = time.perf_counter() - t0
    if path.exists():
        ckpt = load_checkpoint(path, "ldm")
        ldm.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if "scheduler" in ckpt:
            scheduler.load_state_dict(ckpt["scheduler"])
        state = ckpt["state"]
    else:
        ldm.set_latent_stats(z)  # once, on training latents (SPEC part 0), then stored in the state dict
        ckpt = {}
    # The weight average the samples come from (ours, docs/recipe.md); it starts from the initial weights, which
    # carry the latent statistics, and is updated after every optimizer step.
    ema = ema_of(ldm, cfg.ldm.ema)
    if ema is not None and "ema" in ckpt:
        ema.module.load_state_dict(ckpt["ema"])
        ema.n_averaged.fill_(ckpt["ema_steps"])
    if state["done"]:
        return (ema.module if ema is not None else ldm).eval(), state

    bar = _progress(cfg.ldm.epochs, "ldm", state["epoch"], progress)
    ldm.train()
    first = state["epoch"]  # this call's first epoch carries its encoding time (state["epoch"] moves on below)
    for epoch in range(first, cfg.ldm.epochs):
        t0 = time.perf_counter()
        g = epoch_generator(cfg.seed, "ldm", epoch, device)
        torch.manual_seed(g.initial_seed())
        total, steps = torch.zeros((), device=device), 0
        with cpu_threads(LDM_CPU_THREADS, device):
            for idx in _batches(len(z), cfg.ldm.batch_size, g):
                loss = ldm.loss(z[idx], cond[idx], generator=g)
                _check_finite(loss.detach(), "ldm", epoch, steps)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.ldm.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(ldm.parameters(), cfg.ldm.grad_clip, foreach=True)
                optimizer.step()
                scheduler.step()
                if ema is not None:
                    ema.update_parameters(ldm)
                total += loss.detach()
                steps += 1
        row = {"epoch": epoch + 1, "loss": float(total) / max(steps, 1), "lr": optimizer.param_groups[0]["lr"]}
        state = {
            "epoch": epoch + 1,
            "curve": state["curve"] + [row],
            "wall_s": state["wall_s"] + time.perf_counter() - t0 + (encode_s if epoch == first else 0.0),
            "done": epoch + 1 == cfg.ldm.epochs,
        }
        payload = {"model": ldm.state_dict(), "optimizer": optimizer.state_dict(),
                   "scheduler": scheduler.state_dict(), "state": state}
        if ema is not None:  # models.run.load_run samples from these weights when they are there
            payload.update(ema=ema.module.state_dict(), ema_steps=int(ema.n_averaged))
        save_checkpoint(path, "ldm", payload)
        bar.update(1)
        bar.set_postfix(loss=f"{row['loss']:.4f}")
        if reporter:
            reporter("ldm", row)
    bar.close()
    return (ema.module if ema is not None else ldm).eval(), state


def ema_of(model: torch.nn.Module, decay: float):
    """torch's AveragedModel keeping an exponential moving average of `model` (buffers copied), or None for 0."""
    if decay <= 0:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


# --- the whole run ---------------------------------------------------------------------------------------------


def train_run(cfg: TrainConfig, run_dir: str | Path, *, data: ImageSet | None = None, progress: bool = True,
              reporter: Reporter | None = None) -> RunSummary:
    """Train (or finish training) the run in `run_dir`; returns the per-stage state (curves, wall time)."""
    from models.data import load_dataset
    from models.device import resolve_device

    device = resolve_device(cfg.device)  # a CUDA device that is not there stops here, before the run directory
    run_dir = Path(run_dir)
    prepare_run_dir(cfg, run_dir)  # refuses a directory that holds another config, before any work
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if data is None:
        data = load_dataset(cfg.data.dataset, data_dir=cfg.data.data_dir)
    data = on_device(subset_for(cfg, data), device)

    ae, rae_state = train_rae(cfg, data, run_dir, progress=progress, reporter=reporter)
    if reporter:
        reporter("rae_done", {"test_rec": rae_state["curve"][-1]["test_rec"]})
    ldm, ldm_state = train_ldm(cfg, data, ae, run_dir, progress=progress, reporter=reporter)

    from models.plots import save_curves, save_sample_grid

    save_curves(run_dir, rae_state["curve"], ldm_state["curve"])
    save_sample_grid(cfg, data, ae, ldm, run_dir / "samples.png")
    return RunSummary(run_dir=run_dir, rae=rae_state, ldm=ldm_state)


def on_device(data: ImageSet, device: torch.device) -> ImageSet:
    """The training set with its tensors on `device` (moved once per run: a few hundred MB of uint8 at most)."""
    if data.train_images.device == device:
        return data
    tensors = ("train_images", "train_labels", "train_exemplars", "test_images", "test_labels", "test_exemplars")
    return dataclasses.replace(data, **{name: getattr(data, name).to(device) for name in tensors})


def subset_for(cfg: TrainConfig, data: ImageSet) -> ImageSet:
    if cfg.data.train_classes is None and cfg.data.test_classes is None:
        return data
    # The subset is part of the data definition, not of the run's randomness: seed 0 for every run, so that runs
    # with different seeds (and every trial of a sweep) see the same classes.
    return data.subset(train_classes=cfg.data.train_classes, test_classes=cfg.data.test_classes, seed=0)
