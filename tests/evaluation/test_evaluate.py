"""Reference generators land where theory says (the issue's tests), through evaluate_samples and real critics.

copy: the exemplar itself -> originality 0.  noise: class-blind images -> recognizability 1/20.
human: the held-out drawings -> exactly the human point.  other class: another class's drawings -> far below human.
"""
from __future__ import annotations

import pytest
import torch

from evaluation.evaluate import evaluate_samples
from evaluation.human import human_point_of


@pytest.fixture(scope="module")
def human(critics, omniglot):
    return human_point_of(critics, omniglot)


def _grouped(omniglot):
    """(150, 19, 48, 48) test drawings grouped by class (each Omniglot test class has 19)."""
    order = torch.argsort(omniglot.test_labels, stable=True)
    return omniglot.test_images[order].view(150, 19, 48, 48)


def test_copy_generator_has_zero_originality(critics, omniglot, human):
    copies = omniglot.test_exemplars[:, None].expand(150, 19, 48, 48)
    r = evaluate_samples(copies, omniglot.test_exemplars, critics, human)
    assert r["originality"] == pytest.approx(0.0, abs=1e-6)  # batched conv features differ in the last bits
    assert r["recognizability"] > 0.99
    assert r["distance_to_human"] == pytest.approx(
        ((0 - human["originality"]) ** 2 / human["originality"] ** 2
         + (r["recognizability"] - human["recognizability"]) ** 2 / human["recognizability"] ** 2) ** 0.5)


def test_noise_generator_is_at_chance(critics, omniglot, human):
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(150, 19, 48, 48, generator=g)
    r = evaluate_samples(noise, omniglot.test_exemplars, critics, human)
    assert abs(r["recognizability"] - 1 / 20) < 0.02
    assert r["originality"] > 2 * human["originality"]


def test_human_generator_is_exactly_the_human_point(critics, omniglot, human):
    r = evaluate_samples(_grouped(omniglot), omniglot.test_exemplars, critics, human)
    assert r["originality"] == pytest.approx(human["originality"], abs=1e-12)
    assert r["recognizability"] == pytest.approx(human["recognizability"], abs=1e-12)
    assert r["distance_to_human"] == pytest.approx(0.0, abs=1e-9)
    assert human["recognizability"] == pytest.approx(critics.manifest["heldout"]["recognizability_20way_1shot"])
    assert human["originality"] == pytest.approx(critics.manifest["heldout"]["human_originality"], abs=1e-6)


def test_exemplar_outputs_computed_once_score_the_same(critics, omniglot, human):
    """A caller that scores several sets against the same exemplars passes their critic outputs once (run_eval
    and the stage ceilings do): the result is the one computed from scratch, to the bit."""
    sets = _grouped(omniglot)[:, :3]
    once = critics.exemplar_outputs(omniglot.test_exemplars)
    assert [t.shape for t in once] == [(150, 256), (150, 128)]
    fresh = evaluate_samples(sets, omniglot.test_exemplars, critics, human)
    reused = evaluate_samples(sets, omniglot.test_exemplars, critics, human, exemplar_outputs=once)
    assert reused == fresh


def test_other_class_generator_is_far_less_recognizable(critics, omniglot, human):
    shifted = torch.roll(_grouped(omniglot), shifts=1, dims=0)  # class c gets the drawings of class c - 1
    r = evaluate_samples(shifted, omniglot.test_exemplars, critics, human)
    assert r["recognizability"] < 0.5 * human["recognizability"]
    assert r["originality"] > human["originality"]


def test_result_records_what_was_used(critics, omniglot, human):
    r = evaluate_samples(omniglot.test_images, omniglot.test_exemplars, critics, human,
                         labels=omniglot.test_labels, normalization="absolute")
    assert r["critics_hash"] == critics.hash and r["threshold"] == 0.3
    assert r["normalization"] == "absolute" and r["originality_normalizer"] == critics.normalizer
    assert r["tasks"] == {"n_way": 20, "tasks_per_class": 100, "seed": 44, "count": 750}
    assert r["n_samples"] == 2850 and len(r["per_class"]["recognizability"]) == 150
    curve = r["curve_by_originality_decile"]
    assert len(curve["originality"]) == 10 and curve["originality"] == sorted(curve["originality"])
    # LM's per-set unit differs from the fixed one only through s; on the human set itself they agree
    assert r["originality_per_set"] == pytest.approx(r["originality"], rel=1e-9)


def test_bad_samples(critics, omniglot):
    bad = torch.rand(150, 2, 48, 48)
    bad[3, 1, 5, 5] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        evaluate_samples(bad, omniglot.test_exemplars, critics)


def test_bad_sample_shapes(critics, omniglot):
    with pytest.raises(ValueError, match=r"\(C=150, K, H, W\)"):
        evaluate_samples(omniglot.test_images[:19], omniglot.test_exemplars, critics)
    with pytest.raises(ValueError, match="labels"):
        evaluate_samples(omniglot.test_images[:19], omniglot.test_exemplars, critics,
                         labels=omniglot.test_labels[:18])
