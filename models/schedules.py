"""Learning-rate schedules of the two training stages: pure functions of the step, wrapped in torch's LambdaLR.

'constant' is the paper's recipe (LM trains both stages at a fixed rate, SPEC sections 1 and 3). 'cosine' is ours
(docs/recipe.md): a linear warm-up over the first `warmup` fraction of the steps, then a half-cosine from the
peak rate down to zero (Loshchilov & Hutter 2017, "SGDR", eq. 5 without restarts; warm-up as in Goyal et al.
2017). A short budget ends at a small rate instead of wherever the last noisy step left the weights, which is
what made the fixed-rate denoiser collapse or not from one learning rate to the next (issue 14).
"""
from __future__ import annotations

import math

import torch


def lr_factor(step: int, total: int, *, schedule: str, warmup: float = 0.0) -> float:
    """Multiplier of the peak learning rate at optimizer step `step` (0-based) of `total` steps."""
    if schedule == "constant":
        return 1.0
    if schedule != "cosine":
        raise ValueError(f"unknown learning-rate schedule {schedule!r}: expected 'constant' or 'cosine'")
    total = max(int(total), 1)
    warm = int(round(warmup * total))
    if step < warm:
        return (step + 1) / warm  # linear warm-up; the first step already moves (1/warm of the peak)
    progress = min((step - warm) / max(total - warm, 1), 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(optimizer: torch.optim.Optimizer, *, total_steps: int, schedule: str, warmup: float):
    """LambdaLR over `total_steps` optimizer steps; stepped once per optimizer step, saved with the checkpoint."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, schedule=schedule, warmup=warmup))
