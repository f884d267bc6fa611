"""Originality, recognizability and distance to human as pure functions (SPEC part 0 and section 5).

No files, no globals: features and embeddings come in as tensors, seeds are arguments. The critics that produce
the features live in evaluation/critics.py; `evaluation.evaluate.evaluate_samples` strings the two together.
"""
from __future__ import annotations

import numpy as np
import torch

from evaluation.distance import NORMALIZATIONS, distance_to_human  # noqa: F401  (re-exported: the one implementation)

# The recognizability protocol (SPEC part 0), used by every evaluation and every critic's held-out score:
N_WAY = 20  # 20-way 1-shot tasks, the support = the classes' exemplars
TASKS_PER_CLASS = 100  # each class appears in this many tasks
TASK_SEED = 44  # LM's generate_evaluation_task seed


def feature_normalizer(features: torch.Tensor) -> float:
    """LM's s: the mean over images of the std of each feature vector (population std across its dims).

    features: (N, D). Here s is computed once per critic on the human reference set and stored in the manifest
    (SPEC part 0), so that originality has one unit for every model; LM recomputed it per evaluated set.
    """
    if features.dim() != 2 or features.shape[0] == 0:
        raise ValueError(f"features must be a non-empty (N, D) tensor, got shape {tuple(features.shape)}")
    return float(features.double().std(dim=1, unbiased=False).mean())


def originality(sample_features: torch.Tensor, exemplar_features: torch.Tensor, normalizer: float) -> torch.Tensor:
    """LM's originality_d: RMS distance between a sample's features and its exemplar's, both divided by s.

    sample_features, exemplar_features: (N, D), row i of the second is the exemplar of sample i. Returns (N,).
    """
    if sample_features.shape != exemplar_features.shape:
        raise ValueError(
            f"sample and exemplar features must have the same shape, got {tuple(sample_features.shape)} "
            f"and {tuple(exemplar_features.shape)}"
        )
    if not normalizer > 0:
        raise ValueError(f"originality normalizer s must be positive, got {normalizer}")
    diff = (sample_features.double() - exemplar_features.double()) / normalizer  # (N, D)
    return diff.pow(2).mean(dim=1).sqrt()


def evaluation_tasks(n_classes: int, *, n_way: int = N_WAY, tasks_per_class: int = TASKS_PER_CLASS,
                     seed: int = TASK_SEED) -> np.ndarray:
    """Fixed seeded n-way tasks in which every class appears `tasks_per_class` times (LM generate_evaluation_task).

    The class ids are tiled `tasks_per_class` times and cut into chunks of (n_classes // n_way) * n_way ids; any
    window that short of a tiling holds distinct classes, so shuffling a chunk and splitting it into groups of
    n_way gives tasks without repeated classes. Returns (T, n_way) int64, T = n_classes * tasks_per_class // n_way
    (a last incomplete task is dropped when the product is not a multiple of n_way).
    """
    if n_classes < n_way:
        raise ValueError(f"{n_way}-way tasks need at least {n_way} classes, got {n_classes}")
    rng = np.random.default_rng(seed)
    ids = np.tile(np.arange(n_classes, dtype=np.int64), tasks_per_class)  # (C * K,)
    chunk = (n_classes // n_way) * n_way
    pieces = [rng.permutation(ids[i : i + chunk]) for i in range(0, ids.size, chunk)]  # one shuffle per chunk
    ids = np.concatenate(pieces)
    n_tasks = ids.size // n_way
    return ids[: n_tasks * n_way].reshape(n_tasks, n_way)


def _tasks_of_each_class(tasks: np.ndarray, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, K) task indices containing each class, padded with 0 where a class has fewer, and the (C, K) mask."""
    cls = tasks.reshape(-1)  # (T * W,) class of each slot; slot j belongs to task j // W
    order = np.argsort(cls, kind="stable")
    counts = np.bincount(cls, minlength=n_classes)
    k = int(counts.max())
    table = np.zeros((n_classes, k), dtype=np.int64)
    mask = np.arange(k)[None, :] < counts[:, None]  # (C, K)
    table[mask] = (np.arange(cls.size) // tasks.shape[1])[order]  # row-major fill matches the class-sorted order
    return torch.from_numpy(table), torch.from_numpy(mask)


def per_sample_recognizability(
    sample_embeddings: torch.Tensor,
    sample_labels: torch.Tensor,
    exemplar_embeddings: torch.Tensor,
    tasks: np.ndarray,
    *,
    chunk: int = 4096,
) -> torch.Tensor:
    """Fraction of its class's tasks in which each sample is classified correctly (1-shot, exemplars as support).

    In a task the support is the exemplars of its n_way classes; the prediction is the nearest exemplar in squared
    L2 between metric embeddings (ProtoNet). Every sample is queried in every task that holds its class, so the
    mean over samples equals the expectation of LM's one-random-query-per-class-per-task score. A tie with another
    exemplar counts as wrong. sample_embeddings (N, E), sample_labels (N,), exemplar_embeddings (C, E),
    tasks (T, n_way). Returns (N,) float64 in [0, 1].
    """
    n_classes = exemplar_embeddings.shape[0]
    labels = sample_labels.long()
    if labels.numel() and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"sample labels must lie in [0, {n_classes}), got [{int(labels.min())}, {int(labels.max())}]")
    table, mask = _tasks_of_each_class(tasks, n_classes)  # (C, K), (C, K)
    tasks_t = torch.from_numpy(np.ascontiguousarray(tasks))  # (T, W)
    out = []
    for start in range(0, labels.numel(), chunk):  # chunks bound memory at (chunk, K, W); not a per-sample loop
        emb, lab = sample_embeddings[start : start + chunk].double(), labels[start : start + chunk]
        dist = torch.cdist(emb, exemplar_embeddings.double()).pow(2)  # (n, C)
        classes = tasks_t[table[lab]]  # (n, K, W): the classes of every task of each sample's class
        d = dist.gather(1, classes.reshape(len(lab), -1)).reshape(classes.shape)  # (n, K, W)
        is_true = classes == lab[:, None, None]
        d_true = dist.gather(1, lab[:, None])  # (n, 1)
        d_other = d.masked_fill(is_true, float("inf")).amin(dim=2)  # (n, K)
        correct = (d_true < d_other) & mask[lab]  # (n, K)
        out.append(correct.sum(1).double() / mask[lab].sum(1).double())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def curve_by_originality(
    originality_values: torch.Tensor, recognizability_values: torch.Tensor, *, n_bins: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Mean originality and mean recognizability in each of n_bins equal-count originality bins (deciles).

    Bins are over all samples pooled (ranks, ties broken by order). With equal-count bins the mean of the bin
    means equals the mean over samples when N is a multiple of n_bins (LM's binned average). Returns two (n_bins,).
    """
    o = np.asarray(originality_values, dtype=np.float64)
    r = np.asarray(recognizability_values, dtype=np.float64)
    if o.shape != r.shape or o.ndim != 1 or o.size < n_bins:
        raise ValueError(f"need two equal 1-D arrays with at least {n_bins} values, got {o.shape} and {r.shape}")
    ranks = np.empty(o.size, dtype=np.int64)
    ranks[np.argsort(o, kind="stable")] = np.arange(o.size)
    bins = ranks * n_bins // o.size  # (N,) in [0, n_bins)
    counts = np.bincount(bins, minlength=n_bins)
    return np.bincount(bins, o, n_bins) / counts, np.bincount(bins, r, n_bins) / counts
