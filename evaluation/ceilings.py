"""Stage ceilings: where a trial's point is limited, the autoencoder or the diffusion model (issue 14).

A sample can be no more recognizable than the autoencoder lets it be, and a diffusion model that does not sample
the latent distribution it was trained on cannot be judged by its autoencoder. Beside a trial's own point every
evaluation records, through exactly the pipeline of the samples (evaluation.evaluate.evaluate_samples, same
critics, same tasks):

- `ae`: held-out human drawings passed through the autoencoder (encode, decode): the best point a perfect
  diffusion model on these latents could reach (a perfect one samples the latents of new human drawings). Scored
  on a fixed seeded subset of PER_CLASS drawings of every test class (4 of Omniglot's 19), so that the ceilings
  cost under a tenth of even a DDIM-50 evaluation; the subset's own human point is within 0.01 of the full one.
  With it, `grey_share`: how grey the autoencoder's reconstructions are (evaluation/ink.py), so that faint samples
  can be traced to the decoder (it blurs what it reconstructs) or to the diffusion model;
- `copy`: each class exemplar passed through the autoencoder: the autoencoder's version of copying (originality
  from reconstruction error alone). Scored once per class: K identical copies give exactly the same originality
  and recognizability as one (each sample is scored on every task of its class), at 1/K of the cost;
and, in latent space (both on raw latents, (N, L)):
- `latent_spread_ratio`: the spread of the sampled latents over that of the encoded test drawings (1 = the
  data's scale; a diverged sampler gives 5-10);
- `nearest_exemplar_sampled` / `nearest_exemplar_real`: the fraction of sampled latents (resp. encoded test
  drawings) whose nearest exemplar latent, among the test classes', is their own class's.
"""
from __future__ import annotations

import torch

PER_CLASS = 4  # human drawings per test class in the autoencoder ceiling
SUBSET_SEED = 0


def drawing_subset(labels: torch.Tensor, per_class: int = PER_CLASS, seed: int = SUBSET_SEED) -> torch.Tensor:
    """Indices of `per_class` drawings of every class (all of a class that has fewer), seeded, sorted."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=g)
    counts: dict[int, int] = {}
    keep = []
    for i in order.tolist():
        c = int(labels[i])
        if counts.get(c, 0) < per_class:
            counts[c] = counts.get(c, 0) + 1
            keep.append(i)
    return torch.tensor(sorted(keep), dtype=torch.long)


def latent_spread(z: torch.Tensor) -> float:
    """The scalar std of raw latents over every entry (N, L): the number the LDM standardizes with."""
    return float(z.double().std())


def nearest_exemplar_fraction(z: torch.Tensor, labels: torch.Tensor, exemplar_z: torch.Tensor) -> float:
    """Fraction of latents z (N, L) whose nearest (L2) row of exemplar_z (C, L) is row labels[i]."""
    nearest = torch.cdist(z.double(), exemplar_z.double()).argmin(dim=1)  # (N,)
    return float((nearest == labels).double().mean())


def _point(result: dict) -> dict:
    return {k: result[k] for k in ("originality", "recognizability")} | {"distance": result["distance_to_human"]}


@torch.no_grad()
def stage_ceilings(ae, imageset, sampled_z: torch.Tensor, *, per_class: int, critics, human_point: dict,
                   normalization: str = "relative", seed: int = 0, exemplar_outputs: tuple | None = None) -> dict:
    """The stage ceilings of a trained autoencoder and the latents its LDM sampled (see the module docstring).

    sampled_z: (C * per_class, L) raw latents grouped by class, as models.generate returns them.
    exemplar_outputs: critics.exemplar_outputs(imageset.test_exemplars) when the caller has them (the samples'
    evaluation): computed once for both ceilings otherwise.
    """
    from evaluation.evaluate import evaluate_samples
    from evaluation.ink import ink_stats
    from models.device import module_device
    from models.train import encode_images

    device = module_device(ae)
    n_classes = len(imageset.test_exemplars)

    def decode(z: torch.Tensor) -> torch.Tensor:  # (N, L) -> (N, 48, 48) on the CPU
        return torch.cat([ae.decode(z[i : i + 1024].to(device))[:, 0] for i in range(0, len(z), 1024)]).cpu()

    # a KL autoencoder's latent is a sample: seeded (the latent measures use every drawing)
    real_z = encode_images(ae, imageset.test_images.to(device), seed=seed).cpu()
    ex_z = encode_images(ae, imageset.test_exemplars.to(device), seed=seed + 1).cpu()
    subset = drawing_subset(imageset.test_labels)
    exemplar_outputs = exemplar_outputs or critics.exemplar_outputs(imageset.test_exemplars)
    ae_x = decode(real_z[subset])
    ae_result = evaluate_samples(ae_x, imageset.test_exemplars, critics,
                                 labels=imageset.test_labels[subset], human_point=human_point,
                                 normalization=normalization, exemplar_outputs=exemplar_outputs)
    ex_x = decode(ex_z)
    copy_result = evaluate_samples(ex_x[:, None], imageset.test_exemplars, critics,  # (C, 1, 48, 48)
                                   human_point=human_point, normalization=normalization,
                                   exemplar_outputs=exemplar_outputs)
    sampled_labels = torch.arange(n_classes).repeat_interleave(per_class)
    return {
        "ae": {**_point(ae_result), "drawings": len(subset), "grey_share": ink_stats(ae_x)["grey_share"]},
        "copy": _point(copy_result),
        "latent_spread_ratio": latent_spread(sampled_z.cpu()) / latent_spread(real_z),
        "nearest_exemplar_sampled": nearest_exemplar_fraction(sampled_z.cpu(), sampled_labels, ex_z),
        "nearest_exemplar_real": nearest_exemplar_fraction(real_z, imageset.test_labels, ex_z),
    }
