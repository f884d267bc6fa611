"""`humanlike evaluate` on a tiny real run: the JSON it writes, the mismatch checks, and the figures from it."""
from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import yaml

from evaluation.ink import ink_stats
from evaluation.run_eval import evaluate_run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, omniglot):
    """Three RAE epochs and one LDM epoch on 20 training classes, small widths, T = 100: a real run in a few seconds
    (after one RAE epoch this small decoder still ignores its latent, and every feature map is zero)."""
    from models.config import build_config
    from models.train import train_run

    cfg = build_config({"data": {"dataset": "omniglot", "train_classes": 20}, "rae": {"epochs": 3, "width": 16},
                        "ldm": {"epochs": 1, "width": 16, "timesteps": 100},
                        "sample": {"sampler": "ddim", "steps": 4, "grid_classes": 2, "grid_samples": 2}})
    run_dir = tmp_path_factory.mktemp("run") / "tiny"
    train_run(cfg, run_dir, data=omniglot, progress=False)
    return run_dir


def test_evaluate_run_writes_json_and_samples(tiny_run, critics, data_dir, omniglot):
    result, path = evaluate_run(tiny_run, critics=critics, data_dir=data_dir)
    # DDPM over all T = 100 steps by default, although the run's picture grid was drawn with DDIM-4
    assert path.parent == tiny_run and path.name == "evaluation_ddpm100_w1_seed0.json"
    saved = json.loads(path.read_text())
    for key in ("originality", "recognizability", "distance_to_human", "sampler", "steps", "guidance",
                "critics_hash", "normalization", "threshold", "human_point"):
        assert key in saved, key
    assert saved["sampler"] == "ddpm" and saved["steps"] == 100 and saved["guidance"] == 1.0
    assert saved["critics_hash"] == critics.hash and saved["normalization"] == "relative"
    assert saved["per_class"] == result["per_class"] and saved["n_samples"] == 150 * 19
    assert set(saved["distance_to_human_by_source"]) == {"omniglot-test", "lake2015"}
    with np.load(tiny_run / saved["samples_file"]) as z:
        assert z["samples"].shape == (150, 19, 48, 48) and z["samples"].dtype == np.uint8
        # the ink the critics do not see (they binarize): of the stored samples, and of the held-out drawings
        assert saved["ink"]["samples"] == ink_stats(z["samples"])
    assert saved["ink"]["human"] == ink_stats(omniglot.test_images)


def test_evaluate_rejects_critics_of_another_dataset(tiny_run, critics):
    foreign = dataclasses.replace(critics, manifest={**critics.manifest, "dataset": "quickdraw"})
    before = sorted(p.name for p in tiny_run.iterdir())
    with pytest.raises(ValueError, match="trained for 'quickdraw'"):
        evaluate_run(tiny_run, critics=foreign, sampler="ddim", steps=2, seed=7)
    assert sorted(p.name for p in tiny_run.iterdir()) == before  # stopped before generating anything


def test_evaluate_rejects_a_run_whose_latent_size_does_not_fit(tiny_run, critics, data_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_run, broken)
    cfg = yaml.safe_load((broken / "config.yaml").read_text())
    cfg["rae"]["latent_size"] = 32  # the weights were trained with 64
    (broken / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match="latent size"):
        evaluate_run(broken, critics=critics, data_dir=data_dir, sampler="ddim", steps=2, seed=7)
    assert not list(broken.glob("evaluation_*seed7*"))


def test_evaluate_and_figure_commands(tiny_run, critics, data_dir, tmp_path, capsys):
    from search.cli import main

    code = main(["evaluate", str(tiny_run), "--sampler", "ddim", "--steps", "3", "--guidance", "0.5",
                 "--data-dir", str(data_dir), "--critics", str(critics.path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "distance to human" in out and "of the samples' ink is mid-grey (people's drawings 37%, through the" in out
    path = tiny_run / "evaluation_ddim3_w0.5_seed0.json"
    assert json.loads(path.read_text())["guidance"] == 0.5
    fig3 = tmp_path / "fig3.png"
    assert main(["figure", "fig3", str(path), str(tiny_run), "--out", str(fig3)]) == 0
    fig2 = tmp_path / "fig2.png"
    assert main(["figure", "fig2", str(tiny_run), "--out", str(fig2), "--classes", "0,1",
                 "--data-dir", str(data_dir)]) == 0
    assert fig3.stat().st_size > 10_000 and fig2.stat().st_size > 5_000


def test_evaluate_command_bad_run_dir(tmp_path, capsys):
    from search.cli import main

    assert main(["evaluate", str(tmp_path / "nope")]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_maps_command_compares_two_runs(tiny_run, data_dir, tmp_path, capsys, one_thread):
    from search.cli import main

    out = tmp_path / "maps"
    code = main(["maps", str(tiny_run), "--classes", "0,3", "--samples", "1", "--records", "5",
                 "--compare", str(tiny_run), "--out", str(out), "--data-dir", str(data_dir), "--threads", "1"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    assert summary["spearman"]["mean"] == pytest.approx(1.0)  # the same model and seed: identical maps
    with np.load(out / "maps.npz") as z:
        assert z["maps"].shape == (2, 1, 48, 48) and list(z["classes"]) == [0, 3]
    assert (out / "maps.png").stat().st_size > 5_000
    assert main(["maps", str(tiny_run), "--classes", "150", "--data-dir", str(data_dir)]) == 2
    assert "--classes" in capsys.readouterr().err


def test_stage_view_shows_drawings_reconstructions_and_samples(tiny_run, omniglot, data_dir, tmp_path,
                                                               bench_script):
    """bench/stage_view.py: per class the held-out drawings, the same drawings through the run's autoencoder, then
    samples; the script writes the PNG of exactly that grid."""
    import subprocess
    import sys

    import torch
    from PIL import Image

    from models.run import load_run
    from models.train import encode_images

    stage_view = bench_script("stage_view")
    script = stage_view.__file__
    run = load_run(tiny_run)
    exemplars, panels = stage_view.stage_rows(run, omniglot, classes=2, per_class=3, sampler="ddim", steps=4,
                                              guidance=1.0, guidance_rule="cfg")
    assert exemplars.shape == (2, 48, 48) and panels.shape == (2, 3 * 3 + 2, 48, 48)
    idx = (omniglot.test_labels == 1).nonzero()[:3, 0]
    np.testing.assert_allclose(panels[1, :3], omniglot.test_images[idx].numpy() / 255.0, atol=1e-6)
    with torch.no_grad():
        recs = run.ae.decode(encode_images(run.ae, omniglot.test_images[idx], seed=0))[:, 0].numpy()
    np.testing.assert_allclose(panels[1, 4:7], recs, atol=1e-5)
    assert (panels[:, 3] == 0).all() and (panels[:, 7] == 0).all()  # the gaps between the three groups
    with pytest.raises(ValueError, match="--classes 999"):
        stage_view.stage_rows(run, omniglot, classes=999, per_class=3, sampler="ddim", steps=4, guidance=1.0,
                              guidance_rule="cfg")

    out = tmp_path / "stages.png"
    proc = subprocess.run([sys.executable, str(script), str(tiny_run), "--out", str(out), "--classes", "2",
                           "--per-class", "3", "--data-dir", str(data_dir)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    with Image.open(out) as im:  # models.plots.write_grid's geometry, doubled: 2 rows, exemplar + 11 panels
        assert im.size == (2 * (12 * 50 + 6), 2 * (2 * 50 + 2))
    # DDPM on a run whose picture grid was drawn with DDIM: every timestep, not the grid's DDIM steps
    proc = subprocess.run([sys.executable, str(script), str(tiny_run), "--out", str(out), "--classes", "2",
                           "--per-class", "3", "--sampler", "ddpm", "--data-dir", str(data_dir)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "(ddpm, guidance 1 (cfg))" in proc.stdout


def test_probe_denoiser_measures_the_x0_error_and_the_samplers_own_trajectory(tiny_run, omniglot, bench_script,
                                                                              monkeypatch):
    """bench/probe_denoiser.py: its trajectory is the sampler's (the same final latents as LatentDiffusion.sample),
    and a denoiser that predicted the true noise would show no error at any noise level."""
    import torch

    from models.run import load_run
    from models.train import encode_images

    probe = bench_script("probe_denoiser")
    run = load_run(tiny_run)
    z = encode_images(run.ae, omniglot.test_images[:40], seed=0)
    cond = run.ldm.standardize(encode_images(run.ae, omniglot.test_exemplars[:2], seed=1))[torch.arange(40) % 2]
    x0 = run.ldm.standardize(z)
    rows = probe.trajectory(run.ldm, cond, sampler="ddim", steps=4, guidance=1.0, ref_std=2.0, seed=3)
    assert [r["t"] for r in rows][-1] == -1 and len(rows) == 5
    sampled = run.ldm.sample(run.ldm.unstandardize(cond), sampler="ddim", steps=4, guidance=1.0,
                             generator=torch.Generator().manual_seed(3))
    assert rows[-1]["x_std"] == pytest.approx(float(run.ldm.standardize(sampled).std()) / 2.0, rel=1e-5)

    error = probe.denoiser_error(run.ldm, x0, cond)
    assert [e["t"] for e in error][0] == 0 and error[-1]["t"] == run.ldm.timesteps - 1
    abar = run.ldm.alphas_cumprod
    assert all(e["x0_gain"] == pytest.approx(float(1 / abar[e["t"]].sqrt())) for e in error)
    assert error[-1]["x0_rmse"] > 0.1  # one epoch of a tiny model is far from exact

    def oracle(x_t, t, c, *, guidance):  # the noise that made x_t from x0, exactly
        a = abar[t][:, None]
        return (x_t - a.sqrt() * x0) / (1 - a).sqrt()

    monkeypatch.setattr(run.ldm, "predict_eps", oracle)
    exact = probe.denoiser_error(run.ldm, x0, cond)
    assert max(e["eps_mse"] for e in exact) < 1e-6 and max(e["x0_rmse"] for e in exact) < 1e-3
