"""`humanlike evaluate RUN_DIR`: generate for every test class, score, write JSON (+ samples) next to the run.

Everything that can disagree is checked before a single sample is generated: the critics' dataset and data
fingerprint against the run's dataset, and the latent sizes of config, autoencoder and diffusion model.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from models.atomic import atomic_open, atomic_write_text

RESULT_PREFIX = "evaluation_"
DEFAULT_SAMPLER = "ddpm"  # SPEC part 0; DDIM is an opt-in for speed (not within 0.03 of DDPM: bench/bench_eval.py)


def check_critics_match(critics, dataset: str, fingerprint: str | None = None) -> None:
    """Critics trained for another dataset, or on other data of the same name, cannot score this run."""
    if critics.dataset != dataset:
        raise ValueError(f"critics {critics.hash} ({critics.path}) were trained for {critics.dataset!r}, but the run "
                         f"is on {dataset!r}: pass --critics for {dataset!r} critics")
    if fingerprint is not None and critics.manifest.get("data_fingerprint") != fingerprint:
        raise ValueError(f"critics {critics.hash} were trained on a different version of {dataset!r} (data "
                         f"fingerprint {str(critics.manifest.get('data_fingerprint'))[:12]}... vs "
                         f"{fingerprint[:12]}... loaded now): retrain them with `humanlike critics train`")


def check_latent_sizes(config, ae, ldm, run_dir) -> None:
    sizes = {"config": config.latent_size, "autoencoder": ae.latent_size, "diffusion model": ldm.latent_size}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"{run_dir}: latent sizes disagree {sizes}; the run's files do not belong together")


def _load_run_checked(run_dir, config, device: str = "cpu"):
    """load_run, with a checkpoint that does not fit its config (e.g. another latent size) as a clear ValueError."""
    from models.run import load_run

    try:
        return load_run(run_dir, device=device)
    except RuntimeError as e:
        if "size mismatch" not in str(e):
            raise
        detail = next((line.strip() for line in str(e).splitlines() if "size mismatch" in line), str(e))
        raise ValueError(f"{run_dir}: the checkpoints do not fit config.yaml (latent size {config.latent_size} "
                         f"there): {detail}") from e


def sampler_steps(sampler: str, steps: int | None, sample) -> int | None:
    """The steps to give `sampler`: `steps` when given, else the run's sample config's (a models.config sample
    section) when both sample with DDIM, else None (DDPM runs every timestep; DDIM then takes its default)."""
    if steps is None and sampler == "ddim" and sample.sampler == "ddim":
        return sample.steps
    return steps


def samples_per_class(labels: torch.Tensor, n_classes: int) -> int:
    """As many samples per class as the human reference has (19 for Omniglot); the median if classes differ."""
    counts = torch.bincount(labels, minlength=n_classes)
    return int(counts.median())


def result_name(sampler: str, steps: int, guidance: float, seed: int, guidance_rule: str = "cfg") -> str:
    """evaluation_ddim50_w1_seed0; a guidance rule other than the paper's is named (..._w2_projected_seed0)."""
    rule = "" if guidance_rule == "cfg" else f"_{guidance_rule}"
    return f"{RESULT_PREFIX}{sampler}{steps}_w{guidance:g}{rule}_seed{seed}"


def evaluate_run(run_dir, *, sampler: str | None = None, steps: int | None = None, guidance: float | None = None,
                 guidance_rule: str | None = None, seed: int = 0, critics=None, data_dir=None,
                 normalization: str = "relative", imageset=None, log: Callable[[str], None] | None = None,
                 device: str = "auto") -> tuple[dict, Path]:
    """Evaluate a finished run; returns the result dict and the JSON path written in run_dir.

    sampler defaults to DDPM over all steps (SPEC part 0); DDIM's steps, the guidance weight and its rule default
    to the run's `sample` config (w = 1 and the paper's rule 'cfg' unless it says otherwise). critics: a Critics,
    a directory, a dataset name, or None for the shipped critics of the run's dataset. data_dir: overrides the
    run's data directory. imageset: the run's dataset already in memory (a sweep worker passes its cached copy);
    every test class is evaluated, whatever subset the run trained on.
    device: where sampling and the critics compute ('auto': a GPU when torch sees one; a sweep trial passes its
    training config's device); the samples and scores come back on the CPU.
    """
    from evaluation.ceilings import stage_ceilings
    from evaluation.critics import load_critics
    from evaluation.evaluate import evaluate_samples
    from evaluation.human import human_points, test_source
    from evaluation.ink import ink_stats
    from models.data import load_dataset, resolve_data_dir
    from models.device import resolve_device
    from models.diffusion.samplers import make_sampler
    from models.generate import generate
    from models.run import load_config_of

    log = log or (lambda m: None)
    device = str(resolve_device(device))  # a CUDA device that is not there stops here, before anything loads
    run_dir = Path(run_dir)
    config = load_config_of(run_dir)
    dataset = config.data.dataset
    if critics is None or isinstance(critics, (str, Path)):
        critics = load_critics(critics or dataset)
    check_critics_match(critics, dataset)  # before the data and the models are loaded
    data_dir = data_dir or config.data.data_dir
    if imageset is None:
        imageset = load_dataset(dataset, data_dir=data_dir)
    elif imageset.name != dataset:
        raise ValueError(f"{run_dir}: the run is on {dataset!r}, the imageset passed is {imageset.name!r}")
    fingerprint = imageset.fingerprint()
    check_critics_match(critics, dataset, fingerprint)
    run = _load_run_checked(run_dir, config, device)
    check_latent_sizes(config, run.ae, run.ldm, run_dir)

    # The number is scored with ancestral DDPM unless asked otherwise, whatever sampler drew the run's picture grid:
    # DDIM moved originality by 0.05 on a quick run (bench/bench_eval.py; README "Performance").
    sampler = sampler or DEFAULT_SAMPLER
    steps = sampler_steps(sampler, steps, config.sample)
    guidance = config.sample.guidance if guidance is None else guidance
    guidance_rule = guidance_rule or config.sample.guidance_rule  # checked by LatentDiffusion.sample
    n_steps = int(make_sampler(sampler, run.ldm.betas, steps=steps).timesteps.numel())  # validates steps too
    points = human_points(critics, imageset, data_dir=resolve_data_dir(data_dir)[0] if dataset == "omniglot"
                          else None)
    n_classes = len(imageset.test_exemplars)
    per_class = samples_per_class(imageset.test_labels, n_classes)

    log(f"generating {n_classes} x {per_class} samples with {sampler}-{n_steps}, guidance {guidance:g} "
        f"({guidance_rule})")
    t0 = time.perf_counter()
    samples, latents = generate(run.ae, run.ldm, imageset.test_exemplars, per_class=per_class, sampler=sampler,
                                steps=steps, guidance=guidance, guidance_rule=guidance_rule, seed=seed,
                                return_latents=True)  # (C, K, 48, 48)
    t1 = time.perf_counter()
    critics = critics.on(resolve_device(device))
    exemplar_outputs = critics.exemplar_outputs(imageset.test_exemplars)  # scored against by all three sets
    result = evaluate_samples(samples, imageset.test_exemplars, critics, points[test_source(dataset)],
                              normalization=normalization, exemplar_outputs=exemplar_outputs)
    t2 = time.perf_counter()
    result["stage_ceilings"] = stage_ceilings(run.ae, imageset, latents, per_class=per_class, critics=critics,
                                              human_point=points[test_source(dataset)],
                                              normalization=normalization, seed=seed,
                                              exemplar_outputs=exemplar_outputs)
    t3 = time.perf_counter()
    result["ink"] = {"samples": ink_stats(samples), "human": ink_stats(imageset.test_images)}
    result["distance_to_human_by_source"] = {
        src: _distance(result, p, normalization) for src, p in points.items()}
    result.update(
        run_dir=str(run_dir), dataset=dataset, data_fingerprint=fingerprint,
        latent_size=config.latent_size, regularizers=config.rae.active, seed_of_run=config.seed,
        sampler=sampler, steps=n_steps, guidance=guidance, guidance_rule=guidance_rule, seed=seed,
        per_class=per_class,
        human_points=points, generate_seconds=round(t1 - t0, 2), score_seconds=round(t2 - t1, 2),
        ceilings_seconds=round(t3 - t2, 2),
    )
    stem = result_name(sampler, n_steps, guidance, seed, guidance_rule)
    result["samples_file"] = f"{stem}.npz"
    images = (samples.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    with atomic_open(run_dir / f"{stem}.npz") as f:
        np.savez_compressed(f, samples=images)
    path = run_dir / f"{stem}.json"
    atomic_write_text(path, json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result, path


def _distance(result: dict, point: dict, normalization: str) -> float:
    from evaluation.metrics import distance_to_human

    return distance_to_human(result["originality"], result["recognizability"], point["originality"],
                             point["recognizability"], normalization=normalization)
