"""Held-out scores of freshly trained critics and the manifest that records them (SPEC part 0, Evaluation).

All scores use the test classes, which the critics never saw: the recognizability critic's 20-way 1-shot
accuracy with exemplars as support (issue 11 asks >= 97% on Omniglot) and with a random other drawing of each
class as support, the SimCLR loss on augmented test drawings, the originality normalizer s computed once on the
human reference set (the test drawings), and each critic's input-gradient mass per image quadrant (an even
receptive field puts it where the ink is, not in one corner).
"""
from __future__ import annotations

import math
from datetime import datetime, timezone

import torch

from evaluation.metrics import (N_WAY, TASK_SEED, evaluation_tasks, feature_normalizer, originality,
                                per_sample_recognizability)
from evaluation.networks import embed_in_batches
from evaluation.preprocess import preprocess

def random_support_accuracy(embeddings: torch.Tensor, labels: torch.Tensor, tasks, *, seed: int = 0) -> float:
    """20-way 1-shot accuracy when each class's support is one of its own drawings picked at random (seeded) and the
    queries are its other drawings: the usual few-shot protocol, harder than the exemplar (the class medoid)."""
    g = torch.Generator().manual_seed(seed)
    n_classes = int(labels.max()) + 1
    pick = torch.empty(n_classes, dtype=torch.long)
    for c in range(n_classes):
        members = torch.nonzero(labels == c).flatten()
        pick[c] = members[torch.randint(len(members), (1,), generator=g)]
    query = torch.ones(len(labels), dtype=torch.bool)
    query[pick] = False
    return per_sample_recognizability(embeddings[query], labels[query], embeddings[pick], tasks).mean().item()


def quadrant_gradient_mass(fn, x: torch.Tensor) -> dict:
    """Where a critic looks: the mean |d score / d pixel| summed per image quadrant, as fractions of the total.

    score = squared distance of each output vector to the mean output over x (how far the critic moves an image
    from the average drawing), so the gradient says which pixels move it. x: preprocessed (B, 1, S, S). Also
    the ink per quadrant and the gradient mass per unit of ink, whose max/min ratio is 1 for a critic that weighs
    every part of the image alike (None when a quadrant gets no gradient at all).
    """
    x = x.clone().requires_grad_(True)
    with torch.enable_grad():
        out = fn(x)  # (B, D)
        score = (out - out.mean(0).detach()).pow(2).sum()
        (grad,) = torch.autograd.grad(score, x)
    h = x.shape[-1] // 2

    def quads(t: torch.Tensor) -> list[float]:
        t = t.abs().sum(dim=(0, 1))  # (S, S)
        q = torch.stack([t[:h, :h].sum(), t[:h, h:].sum(), t[h:, :h].sum(), t[h:, h:].sum()])
        return (q / q.sum()).tolist()

    g, ink = quads(grad), quads(x.detach())
    per_ink = [a / b for a, b in zip(g, ink)]
    return {"order": ["top-left", "top-right", "bottom-left", "bottom-right"],
            "gradient": [round(v, 4) for v in g], "ink": [round(v, 4) for v in ink],
            "gradient_per_ink": [round(v, 4) for v in per_ink],
            # None: some quadrant gets no gradient at all (a critic blind to part of the image)
            "gradient_per_ink_max_over_min": round(max(per_ink) / min(per_ink), 4) if min(per_ink) > 0 else None}


def build_manifest(simclr, proto, imageset, recipe, training: dict, *, simclr_loss: float) -> dict:
    """The manifest of critics trained on `imageset` with `recipe` (see evaluation.critics for the layout);
    simclr_loss: the SimCLR critic's NT-Xent on augmented test drawings (critic_training.simclr_heldout_loss)."""
    from evaluation.critics import MANIFEST_VERSION, critics_hash

    simclr.eval()
    proto.eval()
    t = recipe.threshold
    test_f = embed_in_batches(simclr.features, preprocess(imageset.test_images, size=simclr.input_size, threshold=t))
    ex_f = embed_in_batches(simclr.features, preprocess(imageset.test_exemplars, size=simclr.input_size,
                                                        threshold=t))
    s = feature_normalizer(test_f)  # (SPEC part 0) once per critic, on the human reference set
    labels = imageset.test_labels
    tasks = evaluation_tasks(len(imageset.test_exemplars), seed=TASK_SEED)
    test_e = embed_in_batches(proto, preprocess(imageset.test_images, size=proto.input_size, threshold=t))
    ex_e = embed_in_batches(proto, preprocess(imageset.test_exemplars, size=proto.input_size, threshold=t))
    arch = {"simclr": simclr.arch(), "proto": proto.arch()}
    heldout = {
        "test_classes": len(imageset.test_exemplars),
        "test_images": len(imageset.test_images),
        "recognizability_20way_1shot": round(per_sample_recognizability(test_e, labels, ex_e, tasks).mean().item(), 6),
        "simclr_features_20way_1shot": round(per_sample_recognizability(test_f, labels, ex_f, tasks).mean().item(), 6),
        "simclr_loss": round(simclr_loss, 4),
        "simclr_loss_chance": round(math.log(2 * recipe.simclr.batch_size - 1), 4),
        "human_originality": round(originality(test_f, ex_f[labels], s).mean().item(), 6),
        "recognizability_20way_1shot_random_support": round(random_support_accuracy(test_e, labels, tasks), 6),
        "quadrant_gradient_mass": {
            "images": "the test drawings",
            "proto": quadrant_gradient_mass(proto, preprocess(imageset.test_images, size=proto.input_size,
                                                              threshold=t)),
            "simclr": quadrant_gradient_mass(simclr.features, preprocess(imageset.test_images,
                                                                         size=simclr.input_size, threshold=t)),
        },
    }
    return {
        "schema_version": MANIFEST_VERSION,
        "critics_hash": critics_hash(simclr.state_dict(), proto.state_dict(), dataset=imageset.name, threshold=t,
                                     normalizer=s, arch=arch),
        "dataset": imageset.name,
        "data_fingerprint": imageset.fingerprint(),
        "threshold": t,
        "originality": {"normalizer": s, "input_size": simclr.input_size,
                        "normalizer_source": f"{imageset.name} test drawings (human reference set), "
                                             f"{len(imageset.test_images)} images"},
        "recognizability": {"input_size": proto.input_size, "n_way": N_WAY, "task_seed": TASK_SEED},
        "arch": arch,
        "recipe": recipe.to_dict(),
        "heldout": heldout,
        "training": training,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
