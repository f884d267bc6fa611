"""Evaluation on a device: the critics and the sampler compute where asked, the results come back on the CPU, and
the CPU path is unchanged by it. The CUDA tests run only where torch sees a GPU."""
from __future__ import annotations

import pytest
import torch

from evaluation.evaluate import evaluate_samples
from models.config import ConfigError

HAS_CUDA = torch.cuda.is_available()
CLASSES = 20  # the first 20 test classes of Omniglot: enough for 20-way tasks, a few seconds of critics


@pytest.fixture(scope="module")
def small(omniglot):
    keep = omniglot.test_labels < CLASSES
    return omniglot.test_images[keep], omniglot.test_labels[keep], omniglot.test_exemplars[:CLASSES]


def _score(small, critics, device):
    images, labels, exemplars = small
    return evaluate_samples(images, exemplars, critics, labels=labels, tasks_per_class=5, device=device)


def test_critics_on_their_own_device_are_themselves(critics):
    assert critics.on(torch.device("cpu")) is critics


def test_cpu_and_auto_score_exactly_as_before(small, critics):
    before = _score(small, critics, None)
    if not HAS_CUDA:
        assert _score(small, critics, "auto") == before
    assert _score(small, critics, "cpu") == before


@pytest.mark.skipif(HAS_CUDA, reason="checks the refusal on a machine without a GPU")
def test_evaluating_on_a_missing_gpu_is_refused_before_anything_is_written(critics, tmp_path):
    from evaluation.run_eval import evaluate_run

    with pytest.raises(ConfigError, match="^device: 'cuda' asked for"):
        evaluate_run(tmp_path / "not-even-a-run", critics=critics, device="cuda")


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_critics_on_the_gpu_give_cpu_results_close_to_the_cpu_ones(small, critics):
    cpu, gpu = _score(small, critics, "cpu"), _score(small, critics, "cuda")
    assert next(critics.simclr.parameters()).device.type == "cpu"  # the cached critics were not moved
    assert gpu["originality"] == pytest.approx(cpu["originality"], rel=1e-3)
    assert gpu["recognizability"] == pytest.approx(cpu["recognizability"], abs=0.01)
    assert critics.on(torch.device("cuda")).features(small[2]).device.type == "cpu"


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_generate_runs_on_the_models_device_and_returns_cpu_samples():
    from models.diffusion import LatentDiffusion
    from models.generate import generate
    from models.rae import RegularizedAE

    ae = RegularizedAE(latent_size=8, width=16, weights={"kl": 1.0}).cuda()
    ldm = LatentDiffusion(latent_size=8, timesteps=20, width=16).cuda()
    ldm.set_latent_stats(torch.randn(64, 8, device="cuda"))
    exemplars = torch.randint(0, 256, (3, 48, 48), dtype=torch.uint8)
    a = generate(ae, ldm, exemplars, per_class=2, sampler="ddpm", seed=1)
    b = generate(ae, ldm, exemplars, per_class=2, sampler="ddpm", seed=1)
    assert a.device.type == "cpu" and a.shape == (3, 2, 48, 48) and torch.equal(a, b)
