"""The `device` setting: validated names, 'auto' resolution, a CPU run unchanged by it, runs that move devices, and
checkpoints that hold CPU tensors. The CUDA tests run only where torch sees a GPU."""
from __future__ import annotations

import io
from collections import OrderedDict

import pytest
import torch

from models.checkpoint import load_checkpoint, on_cpu
from models.config import ConfigError, build_config, config_difference
from models.device import resolve_device
from models.run import load_run
from models.train import train_run

HAS_CUDA = torch.cuda.is_available()

TINY = {
    "preset": "quick",
    "data": {"train_classes": 12, "test_classes": 4},
    "rae": {"epochs": 2, "batch_size": 32, "width": 16, "regularizers": {"kl": 0.1, "simclr": 1.0}},
    "ldm": {"epochs": 2, "batch_size": 32, "width": 16, "timesteps": 50},
    "sample": {"sampler": "ddpm", "steps": None, "grid_classes": 2, "grid_samples": 2},
}


def _tensors(run_dir):
    """Every tensor of both checkpoints (weights and optimizer state), by name."""
    out = {}
    for stage in ("rae", "ldm"):
        ckpt = load_checkpoint(run_dir / f"{stage}.pt", stage)
        out.update({f"{stage}.model.{k}": v for k, v in ckpt["model"].items()})
        for i, state in ckpt["optimizer"]["state"].items():
            out.update({f"{stage}.optimizer.{i}.{k}": v for k, v in state.items()})
    return out


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- the config key ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["auto", "cpu", "cuda", "cuda:0", "cuda:3"])
def test_valid_device_names(name):
    assert build_config({"device": name}).device == name  # validated without a GPU: resolved when a run starts


@pytest.mark.parametrize("bad", ["gpu", "CPU", "cuda:", "cuda:x", "cuda:-1", "mps", "", 0])
def test_a_bad_device_is_a_config_error_naming_the_key(bad):
    with pytest.raises(ConfigError, match="^device: "):
        build_config({"device": bad})


def test_the_train_command_line_device_overrides_the_file(tmp_path):
    from models.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text("preset: quick\ndevice: cpu\n")
    assert load_config(path).device == "cpu" and load_config(path, {"device": "cuda:0"}).device == "cuda:0"
    with pytest.raises(ConfigError, match="c.yaml: device: "):
        load_config(path, {"device": "gpu"})


def test_device_defaults_to_auto_and_auto_resolves_to_what_torch_sees():
    assert build_config({}).device == "auto"
    assert resolve_device("auto") == torch.device("cuda" if HAS_CUDA else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(HAS_CUDA, reason="checks the refusal on a machine without a GPU")
def test_cuda_without_a_gpu_is_refused_before_the_run_directory_exists(tmp_path, omniglot):
    with pytest.raises(ConfigError, match="^device: 'cuda:1' asked for"):
        resolve_device("cuda:1")
    with pytest.raises(ConfigError, match="^device: 'cuda' asked for"):
        train_run(build_config({**TINY, "device": "cuda"}), tmp_path / "r", data=omniglot, progress=False)
    assert not (tmp_path / "r").exists()


def test_the_device_is_not_part_of_what_makes_another_config():
    a, b = build_config({**TINY, "device": "cpu"}), build_config({**TINY, "device": "cuda:1"})
    assert config_difference(a, b) is None
    assert config_difference(a, build_config({**TINY, "seed": 7})).startswith("seed: ")


# --- checkpoints ---------------------------------------------------------------------------------------------


def test_on_cpu_leaves_a_cpu_state_dict_as_it_was():
    """The CPU path writes byte-identical checkpoints: same types, same state-dict metadata, same bytes."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(5, 3)).sum().backward()
    optimizer.step()
    payload = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": {"epoch": 1}}
    moved = on_cpu(payload)
    assert isinstance(moved["model"], OrderedDict) and moved["model"]._metadata == payload["model"]._metadata
    a, b = io.BytesIO(), io.BytesIO()
    torch.save(payload, a)
    torch.save(moved, b)
    assert a.getvalue() == b.getvalue()


# --- runs ----------------------------------------------------------------------------------------------------


class _Stop(Exception):
    pass


def _stop_after_the_rae_and_continue(run_dir, omniglot, device: str):
    """Train on the CPU until the RAE is done, stop, then run the same config again on `device`:
    (summary of the continued run, the stages it reported)."""

    def stop_after_the_rae(stage, metrics):
        if stage == "rae_done":
            raise _Stop

    with pytest.raises(_Stop):
        train_run(build_config({**TINY, "device": "cpu"}), run_dir, data=omniglot, progress=False,
                  reporter=stop_after_the_rae)
    seen: list[str] = []
    summary = train_run(build_config({**TINY, "device": device}), run_dir, data=omniglot, progress=False,
                        reporter=lambda stage, metrics: seen.append(stage))
    return summary, seen


@pytest.mark.skipif(HAS_CUDA, reason="'auto' is the CPU only on a machine without a GPU")
def test_cpu_and_auto_train_the_same_run_and_a_run_continues_on_another_device(tmp_path, omniglot):
    cpu = train_run(build_config({**TINY, "device": "cpu"}), tmp_path / "cpu", data=omniglot, progress=False)
    train_run(build_config({**TINY, "device": "auto"}), tmp_path / "auto", data=omniglot, progress=False)
    assert _same(_tensors(tmp_path / "cpu"), _tensors(tmp_path / "auto"))

    moved, seen = _stop_after_the_rae_and_continue(tmp_path / "moved", omniglot, "auto")
    assert "rae" not in seen and seen.count("ldm") == 2  # continued: not refused, the RAE not trained again
    assert moved.ldm["curve"] == cpu.ldm["curve"]
    assert _same(_tensors(tmp_path / "cpu"), _tensors(tmp_path / "moved"))
    for name, t in _tensors(tmp_path / "moved").items():
        assert t.device.type == "cpu", name


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_a_run_trained_on_the_gpu_has_cpu_checkpoints_and_loads_anywhere(tmp_path, omniglot):
    summary = train_run(build_config({**TINY, "device": "cuda"}), tmp_path / "gpu", data=omniglot, progress=False)
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in summary.ldm["curve"])
    for stage in ("rae", "ldm"):  # plain torch.load, no map_location: nothing may point at a GPU
        ckpt = torch.load(tmp_path / "gpu" / f"{stage}.pt", weights_only=True)
        for key, t in {**ckpt["model"], **{f"{i}.{k}": v for i, s in ckpt["optimizer"]["state"].items()
                                           for k, v in s.items()}}.items():
            assert t.device.type == "cpu", (stage, key)
    run = load_run(tmp_path / "gpu", device="cpu")
    assert next(run.ae.parameters()).device.type == "cpu"
    on_gpu = load_run(tmp_path / "gpu", device="cuda")
    assert next(on_gpu.ldm.parameters()).device.type == "cuda"


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_a_run_started_on_the_cpu_continues_on_the_gpu(tmp_path, omniglot):
    summary, seen = _stop_after_the_rae_and_continue(tmp_path / "r", omniglot, "cuda")
    assert "rae" not in seen and [r["epoch"] for r in summary.ldm["curve"]] == [1, 2]
    assert (tmp_path / "r" / "samples.png").stat().st_size > 0


def test_cpu_threads_caps_inside_the_block_and_restores_after():
    from models.device import cpu_threads

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with cpu_threads(1, torch.device("cpu")):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError):  # restored on the way out of an exception too
            with cpu_threads(1, torch.device("cpu")):
                raise RuntimeError("boom")
        assert torch.get_num_threads() == 2
        with cpu_threads(1, torch.device("cuda")):  # a GPU run keeps its CPU threads for data work
            assert torch.get_num_threads() == 2
        with cpu_threads(4, torch.device("cpu")):  # a cap above the setting raises nothing
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
