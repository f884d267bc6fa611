"""From drawings to the numbers of SPEC part 0: originality, recognizability, distance to human.

`evaluate_samples` is the one pipeline every set of drawings goes through: a model's samples, the human
reference drawings (which makes the human point), Lake et al.'s drawings, and the reference generators of the
tests ('copy', 'noise', 'other class'). The search trial calls it directly.
"""
from __future__ import annotations

import torch

from evaluation.metrics import (
    N_WAY,
    TASK_SEED,
    TASKS_PER_CLASS,
    curve_by_originality,
    distance_to_human,
    evaluation_tasks,
    feature_normalizer,
    originality,
    per_sample_recognizability,
)

RESULT_VERSION = 1


def _flatten(samples: torch.Tensor, labels: torch.Tensor | None, n_classes: int):
    """(C, K, H, W) grouped samples or (N, H, W) with labels -> (N, H, W), (N,)."""
    if labels is None:
        if samples.dim() != 4 or samples.shape[0] != n_classes:
            raise ValueError(f"samples must be (C={n_classes}, K, H, W) when no labels are given, "
                             f"got shape {tuple(samples.shape)}")
        labels = torch.arange(n_classes).repeat_interleave(samples.shape[1])
        return samples.reshape(-1, *samples.shape[-2:]), labels
    if samples.shape[0] != labels.shape[0]:
        raise ValueError(f"{samples.shape[0]} samples but {labels.shape[0]} labels")
    return samples, labels.long()


def evaluate_samples(samples: torch.Tensor, exemplars: torch.Tensor, critics, human_point: dict | None = None, *,
                     labels: torch.Tensor | None = None, normalization: str = "relative",
                     task_seed: int = TASK_SEED, tasks_per_class: int = TASKS_PER_CLASS,
                     device: str | None = None, exemplar_outputs: tuple | None = None) -> dict:
    """Score drawings of C classes against their exemplars with `critics` (evaluation.critics.Critics).

    samples: (C, K, H, W) (uint8, or float in [0, 1]) grouped by class, or (N, H, W) with labels (N,) in [0, C).
    exemplars: (C, H, W). human_point: {'originality', 'recognizability', ...} or None (no distance then).
    Returns a JSON-ready dict: the headline originality (fixed unit s of the critics), recognizability (mean over
    all samples of 20-way 1-shot accuracy in fixed seeded tasks), distance to human with its normalization, LM's
    per-set originality (labelled as such), the curve by originality decile, per-class means, and what was used.
    device: where the critics compute ('auto', 'cpu', 'cuda', 'cuda:N'; None: where they are, the CPU once
    loaded); the scores are computed from their outputs on the CPU either way. exemplar_outputs: the critics'
    exemplar_outputs(exemplars), when the caller scores several sets against the same exemplars.
    """
    if device is not None:
        from models.device import resolve_device

        critics = critics.on(resolve_device(device))
    n_classes = exemplars.shape[0]
    flat, labels = _flatten(samples, labels, n_classes)  # (N, H, W), (N,)
    if flat.is_floating_point() and not torch.isfinite(flat).all():
        # a diverged model: binarizing would silently turn NaN into blank paper
        raise ValueError(f"samples contain NaN or inf ({int((~torch.isfinite(flat)).sum())} values)")
    f_ex, e_ex = exemplar_outputs or critics.exemplar_outputs(exemplars)  # (C, 256), (C, 128)
    f, e = critics.features(flat), critics.embeddings(flat)  # (N, 256), (N, 128)
    tasks = evaluation_tasks(n_classes, n_way=N_WAY, tasks_per_class=tasks_per_class, seed=task_seed)
    o = originality(f, f_ex[labels], critics.normalizer)  # (N,)
    r = per_sample_recognizability(e, labels, e_ex, tasks)  # (N,)
    curve_o, curve_r = curve_by_originality(o, r)
    counts = torch.bincount(labels, minlength=n_classes).double()
    result = {
        "result_version": RESULT_VERSION,
        "originality": o.mean().item(),
        "recognizability": r.mean().item(),
        "originality_per_set": originality(f, f_ex[labels], feature_normalizer(f)).mean().item(),
        "distance_to_human": None,
        "normalization": normalization,
        "human_point": None,
        "curve_by_originality_decile": {"originality": curve_o.tolist(), "recognizability": curve_r.tolist()},
        "per_class": {"originality": (torch.bincount(labels, o, n_classes) / counts).tolist(),
                      "recognizability": (torch.bincount(labels, r, n_classes) / counts).tolist()},
        "n_classes": n_classes,
        "n_samples": len(labels),
        "critics_hash": critics.hash,
        "critics_dataset": critics.dataset,
        "threshold": critics.threshold,
        "originality_normalizer": critics.normalizer,
        "tasks": {"n_way": N_WAY, "tasks_per_class": tasks_per_class, "seed": task_seed, "count": len(tasks)},
    }
    if human_point is not None:
        result["human_point"] = {k: human_point[k] for k in ("originality", "recognizability", "source")
                                 if k in human_point}
        result["distance_to_human"] = distance_to_human(
            result["originality"], result["recognizability"], human_point["originality"],
            human_point["recognizability"], normalization=normalization)
    return result
