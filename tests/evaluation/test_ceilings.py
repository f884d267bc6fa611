"""Stage ceilings (evaluation/ceilings.py): the latent-space measures on hand-made latents, and the whole set on a
real tiny run, where 'sampling' the encoded human drawings themselves must give exactly the real-data values."""
from __future__ import annotations

import pytest
import torch

from evaluation.ceilings import PER_CLASS, drawing_subset, latent_spread, nearest_exemplar_fraction, stage_ceilings


def test_nearest_exemplar_fraction_counts_own_class_nearest():
    exemplars = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])  # (C=3, L=2)
    z = torch.tensor([[1.0, 0.0], [9.0, 1.0], [6.0, 0.0], [0.0, 4.0]])  # nearest: 0, 1, 1, 0
    labels = torch.tensor([0, 1, 0, 2])
    assert nearest_exemplar_fraction(z, labels, exemplars) == 0.5


def test_latent_spread_is_the_scalar_std_over_all_entries():
    z = torch.tensor([[1.0, -1.0], [3.0, -3.0]])
    assert latent_spread(z) == pytest.approx(torch.tensor([1.0, -1.0, 3.0, -3.0]).std().item())
    assert latent_spread(3 * z) == pytest.approx(3 * latent_spread(z))


def test_drawing_subset_takes_a_fixed_number_of_each_class():
    labels = torch.tensor([0] * 6 + [1] * 2 + [2] * 5)
    idx = drawing_subset(labels, per_class=3, seed=5)
    assert torch.bincount(labels[idx]).tolist() == [3, 2, 3]  # a class with fewer gives all it has
    assert idx.tolist() == sorted(set(idx.tolist())) and torch.equal(idx, drawing_subset(labels, per_class=3, seed=5))
    assert not torch.equal(idx, drawing_subset(labels, per_class=3, seed=6))


def test_the_ceilings_subset_of_human_drawings_scores_like_all_of_them(omniglot, critics):
    """The autoencoder ceiling is scored on PER_CLASS drawings per class (its cost): that subset, unchanged, must
    land on the human point of all drawings."""
    from evaluation.evaluate import evaluate_samples
    from evaluation.human import human_point_of
    from evaluation.metrics import distance_to_human

    full = human_point_of(critics, omniglot)
    idx = drawing_subset(omniglot.test_labels)
    assert len(idx) == PER_CLASS * 150
    sub = evaluate_samples(omniglot.test_images[idx], omniglot.test_exemplars, critics,
                           labels=omniglot.test_labels[idx])
    d = distance_to_human(sub["originality"], sub["recognizability"], full["originality"], full["recognizability"])
    assert d < 0.03, (sub["originality"], sub["recognizability"], full)


@pytest.fixture(scope="module")
def tiny_ae(tmp_path_factory, omniglot):
    from models.config import build_config
    from models.train import build_ae, train_rae

    cfg = build_config({"data": {"train_classes": 100}, "rae": {"epochs": 4, "width": 32, "lr": 2e-3}})
    from models.train import subset_for

    data = subset_for(cfg, omniglot)
    ae, _ = train_rae(cfg, data, tmp_path_factory.mktemp("ae"), progress=False)
    assert build_ae  # the trainer's own builder made it
    return ae


def test_ceilings_of_a_real_autoencoder(tiny_ae, omniglot, critics, one_thread):
    from evaluation.human import human_point_of
    from models.train import encode_images

    human = human_point_of(critics, omniglot)
    # 'sampled' latents that are the encoded human drawings, 19 per class in class order
    real_z = encode_images(tiny_ae, omniglot.test_images, seed=0)
    order = torch.argsort(omniglot.test_labels, stable=True)
    ceilings = stage_ceilings(tiny_ae, omniglot, real_z[order], per_class=19, critics=critics, human_point=human)
    assert ceilings["latent_spread_ratio"] == pytest.approx(1.0, rel=1e-6)
    assert ceilings["nearest_exemplar_sampled"] == pytest.approx(ceilings["nearest_exemplar_real"])
    assert 1 / 150 < ceilings["nearest_exemplar_real"] <= 1.0
    assert ceilings["ae"]["drawings"] == PER_CLASS * 150
    for stage in ("ae", "copy"):
        point = ceilings[stage]
        assert 0.0 <= point["recognizability"] <= 1.0 and point["originality"] > 0 and point["distance"] > 0
    # a few epochs leave a blurry autoencoder: its human drawings lose recognizability against the real ones
    assert ceilings["ae"]["recognizability"] < human["recognizability"]
    # ... and blurs their ink: the reconstructions of the subset are greyer than the drawings themselves
    from evaluation.ceilings import drawing_subset
    from evaluation.ink import ink_stats

    drawings = omniglot.test_images[drawing_subset(omniglot.test_labels)]
    with torch.no_grad():
        rec = tiny_ae.decode(encode_images(tiny_ae, drawings, seed=0))[:, 0]
    assert ceilings["ae"]["grey_share"] == pytest.approx(ink_stats(rec)["grey_share"], abs=1e-3)
    assert ceilings["ae"]["grey_share"] > ink_stats(drawings)["grey_share"] + 0.1
