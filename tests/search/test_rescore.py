"""Re-scoring a finished sweep with other critics (search/rescore.py, issue 11): the stored samples are scored again
without training, the new scores lie beside the old, and rows scored by different critics are never ranked
against each other. The sweep here is written row by row (results.write_trial_row) with real samples: reference
sets made from the held-out Omniglot drawings, stored as a trial's evaluation npz."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from evaluation import references as ref
from evaluation.run_eval import result_name
from search.rescore import comparable, ranked_results, read_rescored, rescore_sweep, shipped_hash
from search.results import write_trial_row

V1 = "d7e1a6e7f439d714"


def _trial(sweep_dir, n: int, samples: torch.Tensor, *, critics: str, distance: float) -> None:
    run_dir = sweep_dir / "runs" / f"trial_{n}"
    run_dir.mkdir(parents=True)
    np.savez_compressed(run_dir / f"{result_name('ddim', 50, 1.0, 0)}.npz",
                        samples=(samples.clamp(0, 1) * 255).round().to(torch.uint8).numpy())
    write_trial_row(sweep_dir, {
        "sweep": "rs", "trial": n, "state": "COMPLETE", "setting": "none", "dataset": "omniglot",
        "originality": 0.5, "recognizability": 0.9, "distance": distance, "objective": "distance",
        "value_0": distance, "human_originality": 0.567, "human_recognizability": 0.927,
        "normalization": "relative", "critics": critics, "threshold": 0.3, "sampler": "ddim", "sampler_steps": 50,
        "guidance": 1.0, "seed": 0, "run_dir": str(run_dir)})


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, omniglot, data_dir):
    root = tmp_path_factory.mktemp("sweeps")
    d = root / "rs"
    human = ref.grouped(omniglot.test_images, omniglot.test_labels, 150)
    _trial(d, 0, ref.blur(human, 1.0), critics=V1, distance=0.05)
    _trial(d, 1, ref.jitter(omniglot.test_exemplars, 19), critics=V1, distance=0.57)
    write_trial_row(d, {"sweep": "rs", "trial": 2, "state": "FAIL", "error": "boom"})
    (d / "sweep.yaml").write_text(yaml.safe_dump({
        "name": "rs", "root": str(root), "n_trials": 3,
        "train": {"preset": "quick", "data": {"dataset": "omniglot", "data_dir": str(data_dir)}},
        "search": {"families": {"none": {}}}}))
    return d


def test_mixed_critics_are_not_ranked_against_each_other(sweep):
    df, note = ranked_results(sweep)
    assert f"every trial here is scored by critics {V1}, not the shipped ones" in note  # one hash, not shipped
    assert df.loc[df["state"] == "COMPLETE", "distance"].notna().all()  # still ranked among themselves
    mixed = df.copy()
    mixed.loc[mixed["trial"] == 1, "critics"] = "0123456789abcdef"
    out, note = comparable(mixed)
    assert "mixes critics" in note and "0123456789abcdef (1 trials)" in note
    assert math.isnan(out.loc[out["trial"] == 1, "distance"].item())  # not ranked
    assert out.loc[out["trial"] == 0, "distance"].item() == 0.05


def test_rescore_writes_beside_and_status_prefers_the_shipped_critics(sweep, critics, data_dir, capsys):
    assert shipped_hash("omniglot") == critics.hash != V1
    counts = rescore_sweep(sweep, critics, data_dir=data_dir, log=lambda m: None)
    assert counts == {"rescored": 2, "skipped": 0, "missing": 0}
    rec = read_rescored(sweep)[critics.hash]
    assert set(rec) == {0, 1} and rec[0]["critics"] == critics.hash
    # the samples it read, named relative to the sweep directory (like run_dir), so the record survives a move
    assert rec[0]["samples"] == "runs/trial_0/evaluation_ddim50_w1_seed0.npz"
    assert (Path(sweep) / rec[0]["samples"]).is_file()
    assert rescore_sweep(sweep, critics, data_dir=data_dir, log=lambda m: None)["skipped"] == 2
    df, note = ranked_results(sweep)
    assert note is None
    done = df[df["state"] == "COMPLETE"].set_index("trial")
    assert (done["scored_by"] == "rescore").all() and (done["critics"] == critics.hash).all()
    assert done.loc[0, "trial_distance"] == 0.05 and done.loc[0, "trial_critics"] == V1  # the old score kept
    assert done.loc[0, "distance"] == pytest.approx(rec[0]["distance"])
    assert done.loc[1, "distance"] == pytest.approx(rec[1]["distance"])
    # the human point of the re-score is the shipped critics' one
    points = json.loads((critics.path / "human_points.json").read_text())[critics.hash]
    assert done.loc[0, "human_originality"] == pytest.approx(points["omniglot-test"]["originality"])
    # rows written before the ink columns (schema 5) take them from the re-score of their samples
    from evaluation.ink import ink_stats

    stored = np.load(Path(sweep) / rec[0]["samples"])["samples"]
    assert done.loc[0, "ink_grey_share"] == pytest.approx(ink_stats(stored)["grey_share"])
    assert done.loc[0, "ink_grey_share"] > done.loc[0, "ink_grey_share_human"] == pytest.approx(0.373, abs=0.001)

    from search.cli import main

    assert main(["sweep", "best", "rs", "--root", str(sweep.parent), "--top", "2"]) == 0
    text = capsys.readouterr().out
    assert f"distance {rec[0]['distance']:.4f}" in text and "mixes" not in text
    assert text.count("of the samples' ink is mid-grey (people's drawings 37%)") == 2


def test_missing_samples_are_reported(sweep, critics, data_dir, tmp_path):
    import shutil

    other = tmp_path / "rs"
    shutil.copytree(sweep, other)
    shutil.rmtree(other / "rescored")
    next(iter((other / "runs" / "trial_1").glob("*.npz"))).unlink()
    lines = []
    counts = rescore_sweep(other, critics, data_dir=data_dir, log=lines.append)
    assert counts["missing"] == 1 and any("no stored samples" in line for line in lines)


def test_a_sweep_rescored_with_older_critics_reads_as_one_until_the_shipped_ones_score_it(tmp_path):
    """Rows first scored by V1 and re-scored throughout with V2 (neither shipped now) rank together under V2, the
    critics that score most rows; once any row has the shipped critics' score, those are preferred (and the rest
    is not ranked against it)."""
    from search.rescore import RESCORED_DIR

    v2, shipped = "ab1f54bfae1387e0", shipped_hash("omniglot")
    d = tmp_path / "old"

    def row(n, critics, distance):
        write_trial_row(d, {"sweep": "old", "trial": n, "state": "COMPLETE", "setting": "none", "dataset": "omniglot",
                            "originality": 0.6, "recognizability": 0.9, "distance": distance, "objective": "distance",
                            "human_originality": 0.567, "human_recognizability": 0.927, "normalization": "relative",
                            "critics": critics, "threshold": 0.3, "sampler": "ddim", "sampler_steps": 50,
                            "guidance": 1.0, "seed": 0})

    def rescore(critics, n, distance, human_o):
        out = d / RESCORED_DIR / critics / f"trial_{n:05d}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"trial": n, "critics": critics, "originality": 0.2, "recognizability": 0.8,
                                   "distance": distance, "human_originality": human_o, "human_recognizability": 0.96,
                                   "threshold": 0.3}))

    row(0, V1, 0.30)  # scored when V1 was shipped
    row(1, v2, 0.41)  # scored when V2 was shipped
    rescore(v2, 0, 0.28, 0.192)
    df, note = ranked_results(d)
    assert (df["critics"] == v2).all() and list(df["distance"]) == [0.28, 0.41]
    assert list(df["scored_by"]) == ["rescore", "trial"] and df.loc[0, "trial_critics"] == V1
    assert f"every trial here is scored by critics {v2}, not the shipped ones" in note  # one group, ranked

    rescore(shipped, 1, 0.45, 0.19)
    df, note = ranked_results(d)
    assert df.loc[1, "critics"] == shipped and df.loc[1, "distance"] == 0.45
    assert "mixes critics" in note and math.isnan(df.loc[0, "distance"])  # V1's row is not ranked against it
