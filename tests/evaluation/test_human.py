"""The human points: Lake et al. 2015 drawings, the per-critics cache, and the `human-point` command."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from evaluation.critics import load_critics
from evaluation.human import CACHE_FILE, human_points, lake2015_point
from evaluation.lake2015 import lake2015_classes, load_lake2015


def test_lake2015_drawings_match_their_omniglot_targets(data_dir, omniglot):
    lake = load_lake2015(data_dir)
    assert lake.drawings.shape == (50, 9, 48, 48) and lake.exemplars.shape == (50, 48, 48)
    assert lake.drawings.dtype == torch.uint8
    # ink is high and sparse, as in the Omniglot images
    assert 0.03 < (lake.drawings > 127).float().mean() < 0.3
    names = set(omniglot.train_classes) | set(omniglot.test_classes)
    assert set(lake.classes) <= names and len(set(lake.classes)) == 50
    assert lake2015_classes(data_dir) == lake.classes


def test_lake2015_point_is_human_like(critics, data_dir, omniglot):
    p = lake2015_point(critics, data_dir, train_classes=omniglot.train_classes)
    assert p["n_classes"] == 50 and p["n_samples"] == 450
    assert p["classes_seen_in_critic_training"] == 0  # the default recipe leaves the 46 training targets out
    assert 0.6 < p["recognizability"] <= 1.0 and p["originality"] > 0
    assert p["critics_hash"] == critics.hash


def test_human_points_are_cached_per_critics(critics, omniglot, data_dir, tmp_path):
    local = tmp_path / "critics"
    shutil.copytree(critics.path, local, ignore=shutil.ignore_patterns(CACHE_FILE))
    mine = load_critics(local)
    points = human_points(mine, omniglot, data_dir=data_dir)
    assert set(points) == {"omniglot-test", "lake2015"}
    cache = json.loads((local / CACHE_FILE).read_text())
    assert set(cache) == {mine.hash}
    # a cached entry is what comes back (mark it to see that no recomputation happened)
    cache[mine.hash]["omniglot-test"]["note"] = "from cache"
    (local / CACHE_FILE).write_text(json.dumps(cache))
    again = human_points(mine, omniglot, data_dir=data_dir)
    assert again["omniglot-test"]["note"] == "from cache"
    assert again["omniglot-test"]["recognizability"] == points["omniglot-test"]["recognizability"]
    fresh = human_points(mine, omniglot, data_dir=data_dir, refresh=True)
    assert "note" not in fresh["omniglot-test"]


def test_human_point_command_prints_both(critics, data_dir, capsys):
    from search.cli import main

    assert main(["human-point", "--dataset", "omniglot", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "omniglot-test" in out and "lake2015" in out and critics.hash in out


def test_human_point_command_rejects_foreign_critics(data_dir, capsys):
    from search.cli import main

    assert main(["human-point", "--dataset", "omniglot", "--critics", "/nonexistent/critics"]) == 2
    assert "no critics at" in capsys.readouterr().err


@pytest.mark.parametrize("missing", ["targets_to_omniglot.csv"])
def test_lake2015_missing_files_are_named(tmp_path, missing):
    with pytest.raises(FileNotFoundError, match=missing):
        load_lake2015(tmp_path)


def test_the_lake_drawings_105_px_renderings_are_the_same_drawings_in_the_same_order(data_dir, bench_script):
    # bench/lake_rendering.py scores the .mat file's 105 px renderings beside the PNGs `human-point` reads: that
    # comparison means something only if drawing (target, k) is the same drawing in both
    png = load_lake2015(data_dir).drawings.flatten(2).float()  # (50, 9, 2304)
    mat = bench_script("lake_rendering").mat_drawings(data_dir, 50, 9).flatten(2).float()
    sim = torch.nn.functional.normalize(mat, dim=2) @ torch.nn.functional.normalize(png, dim=2).transpose(1, 2)
    assert (sim.argmax(dim=2) == torch.arange(9)).all()  # each drawing's best match is its own index
    assert sim.diagonal(dim1=1, dim2=2).min() > 0.7
