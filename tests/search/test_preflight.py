"""`humanlike sweep run` stops before Ray starts, exit status 2, touching nothing, when the sweep cannot work.

Real files: the shared Omniglot copied and damaged in a temporary data directory (truncated, wrong shape, a zip
without the Alphabet/characterNN layout, a file that is not a zip), an unreachable download (the proxy is a closed
loopback port), duplicate YAML keys, settings that cannot work together. Each run goes through the real CLI entry
point in this process; Ray is never started (a test would see it in ray.is_initialized()).
"""
from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml

from search.cli import main


def _omniglot_copy(tmp_path: Path, data_dir: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(data_dir / "omniglot", root / "omniglot")
    return root


def _run(capsys, *argv) -> tuple[int, str]:
    rc = main(["sweep", "run", *map(str, argv)])
    return rc, capsys.readouterr().err


def _tree(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def _assert_not_started(tmp_path: Path) -> None:
    import ray

    assert not ray.is_initialized()
    assert not (tmp_path / "sweeps").exists()  # no sweep directory, journal or trial


def _damage_truncated(root: Path) -> str:
    f = root / "omniglot" / "images_background.npz"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    return "unreadable or truncated npz"


def _damage_shape(root: Path) -> str:
    np.savez(root / "omniglot" / "images_background.npz", images=np.zeros((964, 20, 50, 50), dtype=bool))
    return "'images' must be bool (n, 20, 105, 105), got bool (964, 20, 50, 50)"


def _damage_layout(root: Path) -> str:
    (root / "omniglot" / "images_background.npz").unlink()
    with zipfile.ZipFile(root / "omniglot" / "images_background.zip", "w") as zf:
        zf.writestr("images_background/Latin/a.png", b"not in characterNN folders")
    return "no Omniglot PNGs in the <Alphabet>/characterNN/XXXX_YY.png layout"


def _damage_not_zip(root: Path) -> str:
    (root / "omniglot" / "images_background.npz").unlink()
    (root / "omniglot" / "images_background.zip").write_text("<html>a login page, not an archive</html>")
    return "unreadable or truncated zip"


@pytest.mark.parametrize("damage", [_damage_truncated, _damage_shape, _damage_layout, _damage_not_zip],
                         ids=["truncated", "wrong-shape", "wrong-layout", "not-a-zip"])
def test_a_damaged_dataset_stops_the_sweep_before_ray_naming_the_file(tmp_path, data_dir, critics_dir, capsys,
                                                                        damage, sweep_file):
    root = _omniglot_copy(tmp_path, data_dir)
    fault = damage(root)
    rc, err = _run(capsys, sweep_file(tmp_path, root, critics_dir))
    assert rc == 2
    assert "images_background" in err and fault in err, err
    _assert_not_started(tmp_path)


def test_no_data_and_no_internet_stops_with_the_fix(tmp_path, critics_dir, capsys, monkeypatch, sweep_file):
    """No data directory given, an empty download cache, and a download that cannot reach the network."""
    monkeypatch.delenv("HUMANLIKE_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # the discard port: nothing listens, refused at once
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    path = sweep_file(tmp_path, tmp_path, critics_dir)
    raw = yaml.safe_load(path.read_text())
    del raw["train"]["data"]["data_dir"]
    path.write_text(yaml.safe_dump(raw))
    rc, err = _run(capsys, path)
    assert rc == 2
    assert "images_background.zip" in err and "download" in err, err
    assert "--data-dir" in err and "HUMANLIKE_DATA_DIR" in err, err
    _assert_not_started(tmp_path)
    assert not list((tmp_path / "home").rglob("*.zip"))  # no half download under the real name


def test_an_existing_sweep_stays_byte_identical(tmp_path, data_dir, critics_dir, capsys, sweep_file):
    from search.study import open_study, read_sweep_file, save_spec

    root = _omniglot_copy(tmp_path, data_dir)
    path = sweep_file(tmp_path, root, critics_dir)
    spec, raw = read_sweep_file(path)
    save_spec(spec, raw)  # an existing sweep: its saved file and its study with a finished trial
    study = open_study(spec)
    trial = study.ask()
    trial.suggest_float("w_prototype", 0.1, 10.0, log=True)
    study.tell(trial, 1.0)
    before = _tree(spec.dir())
    _damage_truncated(root)
    rc, err = _run(capsys, path)
    assert rc == 2 and "truncated" in err
    assert _tree(spec.dir()) == before


def test_a_key_written_twice_names_its_path_and_both_lines(tmp_path, data_dir, critics_dir, capsys, sweep_file):
    path = sweep_file(tmp_path, data_dir, critics_dir)
    text = path.read_text().replace(
        "  regularizers:\n", "  regularizers:\n    prototype:\n      low: 1.0\n      high: 5.0\n", 1)
    path.write_text(text)
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if line.strip() == "prototype:"]
    assert len(lines) == 2
    rc, err = _run(capsys, path)
    assert rc == 2
    assert f"search.regularizers.prototype: key written twice (lines {lines[0]} and {lines[1]})" in err, err
    _assert_not_started(tmp_path)


def test_a_training_config_with_a_key_written_twice_is_refused(tmp_path):
    from models.config import ConfigError, load_config

    path = tmp_path / "train.yaml"
    path.write_text("preset: quick\nrae:\n  epochs: 2\n  lr: 0.001\n  epochs: 3\n")
    with pytest.raises(ConfigError, match=r"rae\.epochs: key written twice \(lines 3 and 5\)"):
        load_config(path)


@pytest.mark.parametrize("change, message", [
    ({"evaluation": {"sampler": "ddim", "steps": 5000}},
     "evaluation.steps: DDIM with 5000 steps, but the diffusion has train.ldm.timesteps 1000"),
    ({"train": {"ldm": {"drop_prob": 0.0}}, "evaluation": {"sampler": "ddim", "steps": 2, "guidance": 1.0}},
     "evaluation.guidance: 1 needs the unconditional prediction"),
    ({"train": {"sample": {"sampler": "ddpm", "steps": 50}}}, "train.sample.steps: 50 with sampler ddpm"),
    ({"train": {"device": "cuda"}}, "train.device: cuda but resources.gpu is 0"),
    ({"search": {"regularizers": {"prototype": 1.0}, "params": {"evaluation.steps": {"low": 10, "high": 2000}}}},
     "evaluation.steps: DDIM with 2000 steps, but the diffusion has train.ldm.timesteps 1000; DDIM takes at most "
     "one step per timestep: lower evaluation.steps or raise the timesteps (at search.params evaluation.steps=2000)"),
    ({"train": {"data": {"train_classes": 5000}}}, "train.data.train_classes: 5000, but omniglot has 1473"),
    ({"train": {"rae": {"batch_size": 1000}}}, "train.rae.batch_size: 1000 is more than the 400 training images"),
    ({"resources": {"cpu": 64}}, "resources.cpu: a trial asks for 64 CPUs"),
], ids=["ddim-steps", "guidance-without-dropout", "ddpm-steps", "cuda-without-gpu", "searched-steps",
        "classes", "batch", "cpus"])
def test_settings_that_cannot_work_together_stop_before_ray(tmp_path, data_dir, critics_dir, capsys, change,
                                                             message, sweep_file):
    rc, err = _run(capsys, sweep_file(tmp_path, data_dir, critics_dir, **change))
    assert rc == 2
    assert message in err, err
    _assert_not_started(tmp_path)


def test_retry_failed_requeues_each_failure_once_and_stops_counting_it(tmp_path, data_dir, critics_dir, sweep_file):
    from search.driver import requeue_failed
    from search.study import n_finished, open_study, read_sweep_file

    spec, _ = read_sweep_file(sweep_file(tmp_path, data_dir, critics_dir, n_trials=3))
    study = open_study(spec)
    for weight, state in ((0.5, "FAIL"), (2.0, "COMPLETE"), (4.0, "FAIL")):
        study.enqueue_trial({"w_prototype": weight})
        trial = study.ask()
        trial.suggest_float("w_prototype", 0.1, 10.0, log=True)
        if state == "FAIL":
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, 1.0)
    assert n_finished(study) == 3
    assert requeue_failed(study) == 2
    assert n_finished(study) == 1  # the two failures no longer use the budget
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert sorted(t.system_attrs["fixed_params"]["w_prototype"] for t in waiting) == [0.5, 4.0]
    assert requeue_failed(study) == 0  # run again: nothing is enqueued twice
    reopened = open_study(spec)  # the record is in the study's storage, not in this process
    assert n_finished(reopened) == 1
