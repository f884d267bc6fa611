"""One run end to end on real Omniglot: files, determinism, resume after an interruption, refusals."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from models.checkpoint import load_checkpoint
from models.config import ConfigError, build_config
from models.run import load_run
from models.train import train_run

TINY = {
    "preset": "quick",
    "data": {"train_classes": 12, "test_classes": 4},
    "rae": {"epochs": 2, "batch_size": 32, "regularizers": {"prototype": 1.0}},
    "ldm": {"epochs": 2, "batch_size": 32},
    "sample": {"sampler": "ddim", "steps": 5, "grid_classes": 3, "grid_samples": 2},
}


def _weights(run_dir):
    """Every weight a run keeps: both models, the denoiser's weight average, and the schedules' positions."""
    rae, ldm = (load_checkpoint(run_dir / f"{name}.pt", name) for name in ("rae", "ldm"))
    out = {"rae": rae["model"], "ldm": ldm["model"], "ema": ldm["ema"]}
    out["steps"] = {"rae": torch.tensor(rae["scheduler"]["last_epoch"]), "ldm": torch.tensor(ldm["scheduler"]["last_epoch"]),
                    "ema": torch.tensor(ldm["ema_steps"])}
    return out


def _same(a, b):
    return all(torch.equal(a[s][k], b[s][k]) for s in a for k in a[s])


def test_run_writes_everything_and_is_deterministic(tmp_path, omniglot):
    cfg = build_config(TINY)
    summary = train_run(cfg, tmp_path / "a", data=omniglot, progress=False)
    run_dir = summary.run_dir
    for name in ("config.yaml", "rae.pt", "ldm.pt", "curves.csv", "curves.png", "samples.png"):
        assert (run_dir / name).stat().st_size > 0, name
    rae = torch.load(run_dir / "rae.pt", weights_only=True)  # plain tensors and builtins only
    assert rae["format"] == "humanlike.rae" and rae["version"] == 1 and rae["state"]["done"]
    assert [row["epoch"] for row in summary.rae["curve"]] == [1, 2]
    run = load_run(run_dir)
    assert run.config == cfg and not run.ae.training and run.ldm.latent_std.item() > 0
    # the quick preset keeps a weight average of the denoiser: the run samples from it, not from the last weights
    ldm = torch.load(run_dir / "ldm.pt", weights_only=True)
    name = "denoiser.out.weight" if "denoiser.out.weight" in ldm["ema"] else next(
        k for k in ldm["ema"] if k.endswith("weight"))
    assert torch.equal(run.ldm.state_dict()[name], ldm["ema"][name])
    assert not torch.equal(ldm["ema"][name], ldm["model"][name])
    assert ldm["ema_steps"] == ldm["scheduler"]["last_epoch"] > 0
    lrs = [row["lr"] for row in summary.ldm["curve"]]
    assert lrs[-1] < lrs[0] <= cfg.ldm.lr  # the cosine schedule decays

    train_run(cfg, tmp_path / "b", data=omniglot, progress=False)
    assert _same(_weights(tmp_path / "a"), _weights(tmp_path / "b"))


def test_stage_wall_times_add_up_to_no_more_than_the_call(tmp_path, omniglot, monkeypatch):
    # The LDM stage encodes the training set once per call and counts that time once; it was once added to every
    # epoch. A slow encoder (the real one after a half-second pause, twice a call) makes the difference far larger
    # than the call's other costs (data on the device, the sample grid, the curves).
    import models.train as train

    real = train.encode_images

    def slow_encode(*args, **kwargs):
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "encode_images", slow_encode)  # called twice: training images, exemplars
    cfg = build_config({**TINY, "ldm": {**TINY["ldm"], "epochs": 5}})
    t0 = time.perf_counter()
    summary = train_run(cfg, tmp_path / "r", data=omniglot, progress=False)
    elapsed = time.perf_counter() - t0
    assert 1.0 <= summary.ldm["wall_s"] <= elapsed - summary.rae["wall_s"]


class _Stop(Exception):
    pass


def test_interrupted_run_resumes_to_the_same_weights(tmp_path, omniglot):
    cfg = build_config(TINY)
    train_run(cfg, tmp_path / "full", data=omniglot, progress=False)

    def stop_after_first_ldm_epoch(stage, metrics):
        if stage == "ldm" and metrics["epoch"] == 1:
            raise _Stop

    with pytest.raises(_Stop):
        train_run(cfg, tmp_path / "cut", data=omniglot, progress=False, reporter=stop_after_first_ldm_epoch)
    assert load_checkpoint(tmp_path / "cut" / "ldm.pt", "ldm")["state"]["epoch"] == 1
    with pytest.raises(ValueError, match="not finished"):
        load_run(tmp_path / "cut")

    seen = []
    train_run(cfg, tmp_path / "cut", data=omniglot, progress=False, reporter=lambda s, m: seen.append((s, m.get("epoch"))))
    assert ("rae", 1) not in seen and ("rae", 2) not in seen  # the finished stage is not trained again
    assert seen[-1] == ("ldm", 2)
    assert _same(_weights(tmp_path / "full"), _weights(tmp_path / "cut"))


def test_a_bf16_run_trains_fp32_weights_that_resume_and_evaluate_in_fp32(tmp_path, omniglot):
    """rae.precision bf16 (ours): the run trains, checkpoints fp32 weights whose held-out error is measured in fp32
    (recomputed here from the saved weights), and an interrupted bf16 run resumes to the same weights."""
    from models.train import reconstruction_error, subset_for

    cfg = build_config({**TINY, "rae": {**TINY["rae"], "precision": "bf16"}})
    summary = train_run(cfg, tmp_path / "a", data=omniglot, progress=False)
    run = load_run(summary.run_dir)
    assert run.config.rae.precision == "bf16" and all(p.dtype == torch.float32 for p in run.ae.parameters())
    assert run.ae.encoder.autocast_dtype is None and run.ae.decoder.autocast_dtype is None
    held_out = subset_for(cfg, omniglot).test_images[:1024]  # what the run held out
    assert reconstruction_error(run.ae, held_out) == pytest.approx(summary.rae["curve"][-1]["test_rec"], rel=1e-5)
    fp32 = train_run(build_config(TINY), tmp_path / "fp32", data=omniglot, progress=False)
    assert summary.rae["curve"][-1]["rec"] != fp32.rae["curve"][-1]["rec"]  # the option reached the training
    assert summary.rae["curve"][-1]["rec"] == pytest.approx(fp32.rae["curve"][-1]["rec"], rel=0.1)

    def stop_after_first_rae_epoch(stage, metrics):
        if stage == "rae" and metrics["epoch"] == 1:
            raise _Stop

    with pytest.raises(_Stop):
        train_run(cfg, tmp_path / "b", data=omniglot, progress=False, reporter=stop_after_first_rae_epoch)
    train_run(cfg, tmp_path / "b", data=omniglot, progress=False)
    assert _same(_weights(tmp_path / "a"), _weights(tmp_path / "b"))


def test_bf16_on_a_cpu_without_bfloat16_hardware_warns_before_training(tmp_path, omniglot, monkeypatch):
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):  # the hardware query, not the training
        monkeypatch.setattr(torch.cpu, name, lambda: False, raising=False)
    import warnings

    seen = []

    def stop(stage, metrics):  # the first epoch's report: what had been warned by then
        seen.append([str(w.message) for w in caught if "bfloat16" in str(w.message)])
        raise _Stop

    cfg = build_config({**TINY, "device": "cpu", "rae": {**TINY["rae"], "precision": "bf16"}})
    with warnings.catch_warnings(record=True) as caught, pytest.raises(_Stop):
        warnings.simplefilter("always")
        train_run(cfg, tmp_path / "r", data=omniglot, progress=False, reporter=stop)
    assert len(seen) == 1 and len(seen[0]) == 1 and "cpu has no bfloat16 in hardware" in seen[0][0]


def test_a_directory_with_another_config_is_refused_before_training(tmp_path, omniglot):
    train_run(build_config(TINY), tmp_path / "r", data=omniglot, progress=False)
    before = (tmp_path / "r" / "rae.pt").read_bytes()
    other = build_config({**TINY, "rae": {**TINY["rae"], "regularizers": {"barlow": 1.0}}})
    with pytest.raises(ConfigError, match="rae.regularizers"):
        train_run(other, tmp_path / "r", data=omniglot, progress=False)
    assert (tmp_path / "r" / "rae.pt").read_bytes() == before


@pytest.mark.slow
def test_sigkill_mid_training_then_same_command_continues(tmp_path, data_dir):
    """The real thing: `humanlike train` killed with SIGKILL while training, then run again."""
    import yaml

    cfg = {**TINY, "rae": {**TINY["rae"], "epochs": 6}}
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "search.cli", "train", str(config), "--out", str(out), "--data-dir", str(data_dir),
           "--no-progress", "--threads", "2"]
    proc = subprocess.Popen(cmd)
    deadline = time.time() + 120
    while time.time() < deadline:
        if (out / "rae.pt").exists() and load_checkpoint(out / "rae.pt", "rae")["state"]["epoch"] >= 2:
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = load_checkpoint(out / "rae.pt", "rae")["state"]["epoch"]
    assert 2 <= done_before < 6
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    state = load_checkpoint(out / "rae.pt", "rae")["state"]
    assert state["done"] and [r["epoch"] for r in state["curve"]] == [1, 2, 3, 4, 5, 6]
    assert (out / "samples.png").exists()


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_the_fused_optimizer_makes_the_loop_optimizers_update(name):
    """optimizer_for (what both stages train with since 2026-12-07) takes the same steps as the optimizer's default
    loop over tensors, up to float rounding, and a state saved by the loop optimizer loads into it and goes on."""
    from models.train import optimizer_for

    cls = getattr(torch.optim, name)
    torch.manual_seed(0)
    models = [torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 4)) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    start = [p.detach().clone() for p in models[0].parameters()]
    loop = cls(models[0].parameters(), lr=1e-2, weight_decay=1e-2)
    fused = optimizer_for(cls, models[1].parameters(), torch.device("cpu"), lr=1e-2, weight_decay=1e-2)
    assert fused.param_groups[0]["fused"] and not loop.param_groups[0]["fused"]
    x = torch.randn(32, 8)
    for _ in range(20):
        for model, opt in zip(models, (loop, fused)):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
    for a, b, a0 in zip(models[0].parameters(), models[1].parameters(), start):
        assert (a - a0).abs().max() > 1e-2  # both trained
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    resumed = optimizer_for(cls, models[0].parameters(), torch.device("cpu"), lr=1e-2, weight_decay=1e-2)
    resumed.load_state_dict(loop.state_dict())
    resumed.step()  # the loop's saved settings win: the resumed run keeps the update it started with
    assert not resumed.param_groups[0]["fused"]
