"""The learning-rate schedules (models/schedules.py) and the recipe settings that use them (models/config.py)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from models.config import ConfigError, build_config, merge
from models.schedules import lr_factor, make_scheduler


def test_constant_is_one_everywhere():
    assert [lr_factor(s, 10, schedule="constant") for s in (0, 5, 9, 100)] == [1.0] * 4


def test_cosine_warms_up_linearly_then_decays_to_zero():
    total, warmup = 100, 0.1  # 10 warm-up steps
    f = [lr_factor(s, total, schedule="cosine", warmup=warmup) for s in range(total + 1)]
    assert f[0] == pytest.approx(0.1) and f[4] == pytest.approx(0.5) and f[9] == pytest.approx(1.0)
    assert f[10] == pytest.approx(1.0)  # the peak, at the first step after the warm-up
    assert f[55] == pytest.approx(0.5)  # half-way through the decay: cos(pi / 2)
    assert f[100] == pytest.approx(0.0, abs=1e-12)
    assert f[10 + 90 // 4] == pytest.approx(0.5 * (1 + math.cos(math.pi * 22 / 90)))
    assert all(a >= b for a, b in zip(f[10:], f[11:]))  # never rises again


def test_unknown_schedule_is_an_error():
    with pytest.raises(ValueError, match="'linear'"):
        lr_factor(0, 10, schedule="linear")


def test_scheduler_sets_the_optimizers_rate_and_resumes_from_its_state():
    def run(steps, state=None):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=2.0)
        sched = make_scheduler(opt, total_steps=20, schedule="cosine", warmup=0.1)
        if state:
            sched.load_state_dict(state)
        for _ in range(steps):
            opt.step()
            sched.step()
        return opt.param_groups[0]["lr"], sched.state_dict()

    lr_full, _ = run(12)
    _, state = run(5)
    lr_resumed, _ = run(7, state)
    assert lr_resumed == pytest.approx(lr_full)
    assert lr_full == pytest.approx(2.0 * lr_factor(12, 20, schedule="cosine", warmup=0.1))


def test_paper_preset_keeps_the_papers_recipe():
    paper = build_config({"preset": "paper"})
    assert (paper.rae.lr_schedule, paper.ldm.lr_schedule, paper.ldm.ema, paper.ldm.grad_clip) == (
        "constant", "constant", 0.0, 0.0)
    assert (paper.rae.lr, paper.ldm.lr, paper.rae.epochs, paper.ldm.epochs) == (1e-4, 1e-4, 100, 100)
    standard = build_config({"preset": "standard"})
    assert standard.ldm.ema > 0 and standard.rae.lr_schedule == "cosine" and standard.data.train_classes is None
    assert (paper.ldm.prediction, paper.ldm.loss_space, standard.ldm.prediction, standard.ldm.loss_space) == (
        "eps", "eps", "v", "eps")
    quick = build_config({"preset": "quick"})
    assert (quick.ldm.prediction, quick.ldm.loss_space) == ("v", "v")


def test_the_ablations_paper_variant_is_the_example_paper_run(bench_script):
    # bench/bench_recipe.py reads back a run directory trained by `humanlike train examples/paper.yaml` (hours on a
    # CPU) instead of training it again: that holds only while both define the same run
    from models.config import config_difference, load_config

    bench = bench_script("bench_recipe")
    variant = build_config(bench.merged(bench.VARIANTS["paper"][2]))
    example = load_config(Path(__file__).resolve().parents[2] / "examples" / "paper.yaml")
    assert config_difference(variant, example) is None
    assert config_difference(build_config(bench.merged(bench.VARIANTS["standard"][2])), example) is not None


@pytest.mark.parametrize("raw, key", [
    ({"ldm": {"ema": 1.0}}, "ldm.ema"),
    ({"ldm": {"grad_clip": -1.0}}, "ldm.grad_clip"),
    ({"rae": {"lr_schedule": "step"}}, "rae.lr_schedule"),
    ({"rae": {"lr_schedule": "cosine", "warmup": 1.5}}, "rae.warmup"),
    ({"ldm": {"warmup": 0.1}}, "ldm.warmup"),  # a warm-up on the constant schedule would be silently ignored
    ({"ldm": {"prediction": "x0"}}, "ldm.prediction"),
    ({"ldm": {"prediction": "eps", "loss_space": "v"}}, "ldm.loss_space"),  # an eps-model has no v loss
])
def test_recipe_settings_are_validated(raw, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build_config(raw)


def test_a_continued_variant_ends_with_the_weights_of_an_uninterrupted_run(tmp_path, omniglot, bench_script,
                                                                          monkeypatch):
    # bench_recipe's longer budgets of the paper's diffusion recipe go on from the shorter run's finished model
    # instead of training again: that is sound only if the result is the longer run's, bit for bit
    from models.checkpoint import load_checkpoint
    from models.train import train_run

    bench = bench_script("bench_recipe")
    tiny = {"preset": "quick", "data": {"train_classes": 20}, "rae": {"epochs": 1},
            "ldm": {"epochs": 1, "lr": 1e-3, **bench._FIXED_LR_LDM},
            "sample": {"sampler": "ddim", "steps": 2, "grid_classes": 2, "grid_samples": 2}}
    longer = merge(tiny, {"ldm": {"epochs": 3}})
    monkeypatch.setattr(bench, "VARIANTS", {"short": ("g", "", tiny), "long": ("g", "", longer),
                                            "cosine": ("g", "", merge(longer, {"ldm": {"lr_schedule": "cosine"}}))})
    monkeypatch.setattr(bench, "CONTINUES", {"long": "short", "cosine": "short"})
    out = tmp_path / "out"
    assert not bench.continue_from("long", out)  # nothing to continue from yet
    train_run(build_config(bench.merged(tiny)), out / "short", data=omniglot, progress=False)
    with pytest.raises(ValueError, match="cosine cannot continue short: only ldm.epochs at a constant rate"):
        bench.continue_from("cosine", out)
    assert bench.continue_from("long", out)
    summary = train_run(build_config(bench.merged(longer)), out / "long", data=omniglot, progress=False)
    assert [row["epoch"] for row in summary.ldm["curve"]] == [1, 2, 3]
    train_run(build_config(bench.merged(longer)), tmp_path / "straight", data=omniglot, progress=False)
    a, b = (load_checkpoint(d / "ldm.pt", "ldm")["model"] for d in (out / "long", tmp_path / "straight"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not bench.continue_from("long", out)  # a run already there is left alone


def test_every_continued_variant_of_the_recipe_bench_may_continue_its_source(bench_script, monkeypatch):
    # the shipped CONTINUES table (the paper's diffusion recipe at longer budgets, at seed 0 and 1): each pair shares
    # its autoencoder and differs only in a longer constant-rate LDM budget; a pair that does not is refused
    bench = bench_script("bench_recipe")
    assert len(bench.CONTINUES) >= 5
    for name in bench.CONTINUES:
        bench.check_continuation(name)
    monkeypatch.setitem(bench.CONTINUES, "standard-seed1-paper-ldm-400", "standard-rae-paper-ldm-200")
    with pytest.raises(ValueError, match="autoencoders differ"):
        bench.check_continuation("standard-seed1-paper-ldm-400")
    monkeypatch.setitem(bench.CONTINUES, "standard-rae-paper-ldm-v", "standard-rae-paper-ldm")
    with pytest.raises(ValueError, match=r"only ldm.epochs at a constant rate may differ \(ldm\.loss_space"):
        bench.check_continuation("standard-rae-paper-ldm-v")
    monkeypatch.setitem(bench.CONTINUES, "standard-rae-paper-ldm", "standard-rae-paper-ldm-400")
    with pytest.raises(ValueError, match="400 >= 100 epochs"):
        bench.check_continuation("standard-rae-paper-ldm")


def test_the_ldm_probe_trains_only_the_diffusion_stage_on_the_source_autoencoder(tmp_path, omniglot, data_dir,
                                                                                 bench_script, monkeypatch, capsys):
    # bench/probe_ldm.py measures diffusion recipes on one finished autoencoder (docs/recipe.md): the probe's run
    # must hold the source's autoencoder bit for bit and differ from the source in the ldm settings it names only
    import json
    import sys

    from models.checkpoint import load_checkpoint
    from models.config import config_difference, load_config
    from models.train import train_run

    probe = bench_script("probe_ldm")
    tiny = {"preset": "quick", "data": {"train_classes": 20, "data_dir": str(data_dir)}, "rae": {"epochs": 1},
            "ldm": {"epochs": 1}, "sample": {"sampler": "ddim", "steps": 2, "grid_classes": 2, "grid_samples": 2}}
    train_run(build_config(tiny), tmp_path / "src", data=omniglot, progress=False)
    argv = ["probe_ldm.py", str(tmp_path / "src"), "--out", str(tmp_path / "probe"), "--steps", "2"]
    monkeypatch.setattr(sys, "argv", argv + ["--variant", "a:lr=0.002", "--variant", "b:warp=9"])
    with pytest.raises(SystemExit, match=r"--variant b: unknown ldm settings \['warp'\]"):
        probe.main()
    assert not (tmp_path / "probe").exists()  # refused before anything was trained
    monkeypatch.setattr(sys, "argv", argv + ["--variant", "a:lr=0.002,epochs=2"])
    probe.main()
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["variant"] == "a" and line["changes"] == {"lr": 0.002, "epochs": 2} and line["sampler"] == "ddim2"
    src, new = load_config(tmp_path / "src" / "config.yaml"), load_config(tmp_path / "probe" / "a" / "config.yaml")
    assert (new.ldm.lr, new.ldm.epochs) == (0.002, 2)
    assert config_difference(new, build_config(merge(src.to_dict(), {"ldm": {"lr": 0.002, "epochs": 2}}))) is None
    a, b = (load_checkpoint(d / "rae.pt", "rae")["model"] for d in (tmp_path / "src", tmp_path / "probe" / "a"))
    assert all(torch.equal(a[k], b[k]) for k in a)
