"""Golden-value tests of the pure metric functions: preprocessing, originality, tasks, recognizability, distance."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from evaluation.metrics import (
    curve_by_originality,
    distance_to_human,
    evaluation_tasks,
    feature_normalizer,
    originality,
    per_sample_recognizability,
)
from evaluation.preprocess import preprocess


def test_preprocess_minmax_then_binarize_matches_formula():
    g = torch.Generator().manual_seed(0)
    imgs = torch.randint(20, 200, (3, 48, 48), generator=g, dtype=torch.uint8)
    out = preprocess(imgs, size=48, threshold=0.3)
    x = imgs.double().numpy()
    lo, hi = x.min(axis=(1, 2), keepdims=True), x.max(axis=(1, 2), keepdims=True)
    expected = ((x - lo) / (hi - lo) > 0.3).astype(np.float32)
    assert out.shape == (3, 1, 48, 48)
    np.testing.assert_array_equal(out[:, 0].numpy(), expected)


def test_preprocess_threshold_changes_result_and_is_validated():
    ramp = torch.linspace(0, 1, 48).repeat(48, 1)  # (48, 48), columns 0..1
    n03 = preprocess(ramp, size=48, threshold=0.3).sum().item()
    n05 = preprocess(ramp, size=48, threshold=0.5).sum().item()
    assert n03 == 48 * int((np.linspace(0, 1, 48) > 0.3).sum())
    assert n05 < n03
    with pytest.raises(ValueError, match="threshold"):
        preprocess(ramp, size=48, threshold=1.5)


def test_preprocess_resizes_and_keeps_blank_images_finite():
    big = torch.zeros(2, 1, 105, 105)
    big[0, 0, 30:70, 40:60] = 1.0  # an ink block; image 1 stays blank
    out = preprocess(big, size=48)
    assert out.shape == (2, 1, 48, 48)
    assert torch.isfinite(out).all() and out[1].sum() == 0
    # the block covers rows 30/105..70/105 of the image: about 18 of 48 rows, 9 of 48 columns
    rows = out[0, 0].sum(1).nonzero().flatten()
    assert 16 <= rows.numel() <= 20 and abs(rows.float().mean().item() - 50 / 105 * 48) < 1.5


def test_feature_normalizer_is_mean_of_per_vector_population_std():
    f = torch.tensor([[1.0, -1.0, 1.0, -1.0], [2.0, -2.0, 2.0, -2.0], [3.0, 3.0, 3.0, 3.0]])
    assert feature_normalizer(f) == pytest.approx((1.0 + 2.0 + 0.0) / 3)


def test_originality_is_rms_distance_in_units_of_s():
    fp = torch.randn(5, 256, generator=torch.Generator().manual_seed(1))
    shift = torch.tensor([0.0, 1.0, -2.0, 3.0, 0.5])[:, None]
    f = fp + shift  # every coordinate moved by the same amount: RMS distance = |shift|
    o = originality(f, fp, normalizer=2.0)
    np.testing.assert_allclose(o.numpy(), np.abs(shift[:, 0].numpy()) / 2.0, atol=1e-12)
    with pytest.raises(ValueError, match="positive"):
        originality(f, fp, normalizer=0.0)
    with pytest.raises(ValueError, match="same shape"):
        originality(f[:, :10], fp, normalizer=1.0)


@pytest.mark.parametrize("n_classes", [150, 69, 50])
def test_evaluation_tasks_every_class_equally_often_in_distinct_tasks(n_classes):
    tasks = evaluation_tasks(n_classes, seed=44)
    assert tasks.shape == (n_classes * 100 // 20, 20)
    assert all(len(set(row)) == 20 for row in tasks.tolist())
    counts = np.bincount(tasks.ravel(), minlength=n_classes)
    assert counts.min() == counts.max() == 100
    np.testing.assert_array_equal(tasks, evaluation_tasks(n_classes, seed=44))  # fixed by the seed
    assert not np.array_equal(tasks, evaluation_tasks(n_classes, seed=45))


def test_evaluation_tasks_rejects_too_few_classes():
    with pytest.raises(ValueError, match="at least 20 classes"):
        evaluation_tasks(10)


def _brute_force_recognizability(emb, labels, ex, tasks):
    """One query at a time, one task at a time: the definition, written as plainly as possible."""
    acc = []
    for e, c in zip(emb.tolist(), labels.tolist()):
        hits = total = 0
        for task in tasks.tolist():
            if c not in task:
                continue
            d = [sum((a - b) ** 2 for a, b in zip(e, ex[k].tolist())) for k in task]
            best = min(range(len(task)), key=lambda j: d[j])
            hits += int(task[best] == c and sorted(d).count(d[best]) == 1)
            total += 1
        acc.append(hits / total)
    return np.array(acc)


def test_per_sample_recognizability_matches_brute_force():
    g = torch.Generator().manual_seed(3)
    n_classes = 24
    ex = torch.randn(n_classes, 6, generator=g)
    labels = torch.arange(n_classes).repeat_interleave(3)
    emb = ex[labels] + 0.9 * torch.randn(len(labels), 6, generator=g)  # noisy: many but not all correct
    tasks = evaluation_tasks(n_classes, tasks_per_class=10, seed=7)
    got = per_sample_recognizability(emb, labels, ex, tasks, chunk=16).numpy()
    want = _brute_force_recognizability(emb, labels, ex, tasks)
    np.testing.assert_allclose(got, want)
    assert 0.1 < want.mean() < 0.95


def test_per_sample_recognizability_extremes():
    ex = torch.eye(30)
    labels = torch.arange(30).repeat(2)
    tasks = evaluation_tasks(30, seed=44)
    assert per_sample_recognizability(ex[labels], labels, ex, tasks).min() == 1.0
    wrong = ex[(labels + 1) % 30]  # every sample sits on another class's exemplar
    # correct only when the tie-free nearest exemplar is its own: never, since the other class wins where present
    # and where absent its own exemplar ties with the other 18 (all at distance 2): ties count as wrong
    assert per_sample_recognizability(wrong, labels, ex, tasks).max() == 0.0
    with pytest.raises(ValueError, match="labels"):
        per_sample_recognizability(ex[:2], torch.tensor([0, 30]), ex, tasks)


def test_curve_by_originality_deciles():
    o = np.arange(100.0)[::-1].copy()
    r = (o >= 50).astype(float)
    bo, br = curve_by_originality(torch.from_numpy(o), torch.from_numpy(r))
    np.testing.assert_allclose(bo, np.arange(10) * 10 + 4.5)
    np.testing.assert_allclose(br, [0] * 5 + [1] * 5)
    assert br.mean() == pytest.approx(r.mean())


def test_distance_to_human_relative_and_absolute():
    assert distance_to_human(1.1, 0.9, 1.0, 1.0) == pytest.approx(math.sqrt(0.02))
    assert distance_to_human(2.0, 0.5, 1.0, 0.8) == pytest.approx(math.hypot(1.0, 0.3 / 0.8))
    assert distance_to_human(2.0, 0.5, 1.0, 0.8, normalization="absolute") == pytest.approx(math.hypot(1.0, 0.3))
    np.testing.assert_allclose(distance_to_human(np.array([1.0, 1.5]), np.array([0.8, 0.8]), 1.0, 0.8), [0.0, 0.5])
    with pytest.raises(ValueError, match="normalization"):
        distance_to_human(1, 1, 1, 1, normalization="zscore")
