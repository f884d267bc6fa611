"""One trial, without Ray: real data, real training (the tiniest config), real critics, a real results row
(the tiny sweep file and the critics directory are tests/conftest.py's fixtures)."""
from __future__ import annotations

import copy
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from search.study import read_sweep_file
from search.results import trial_path
from search.trial import TrialPruned, run_trial, trial_config, trial_dir


def _config(sweep_file, tmp_path, data_dir, critics, params, **top):
    spec, raw = read_sweep_file(sweep_file(tmp_path, data_dir, critics, **top))
    return spec, trial_config(spec, raw, 0, params, threads=1)


def test_one_trial_runs_without_ray_and_writes_its_row(sweep_file, tmp_path, data_dir, critics_dir):
    spec, config = _config(sweep_file, tmp_path, data_dir, critics_dir, {"w_prototype": 1.0})
    seen = []
    row = run_trial(config, lambda stage, metrics: seen.append((stage, dict(metrics))))

    assert row["state"] == "COMPLETE", row.get("error")
    assert [s for s, _ in seen] == ["rae", "rae_done", "ldm"]  # one epoch of each stage, then the RAE summary
    o, r = row["originality"], row["recognizability"]
    oh, rh = row["human_originality"], row["human_recognizability"]
    assert 0 <= r <= 1 and o > 0 and oh > 0 and 0 < rh <= 1
    # SPEC part 0: each axis divided by the human value, then the Euclidean norm (computed here independently).
    assert row["value_0"] == pytest.approx(math.hypot((o - oh) / oh, (r - rh) / rh), rel=1e-9)
    assert row["distance"] == pytest.approx(row["value_0"], rel=1e-9)
    assert row["last_step"] == 1 and row["last_value"] == pytest.approx(seen[-1][1]["loss"])
    assert row["wall_rae_s"] > 0 and row["wall_ldm_s"] > 0 and row["wall_eval_s"] > 0
    assert row["wall_total_s"] >= row["wall_rae_s"] + row["wall_ldm_s"] + row["wall_eval_s"]
    assert row["peak_rss_mb"] > 100  # torch and the data set alone take more than that
    # schema 3: the stage ceilings, read back from the Parquet row as they came from the evaluation's JSON
    import json

    from search.results import read_results

    stored = read_results(spec.dir()).iloc[0]
    saved = json.loads(next((tmp_path / "sweeps").rglob("evaluation_*.json")).read_text())["stage_ceilings"]
    assert stored["ceiling_ae_recognizability"] == pytest.approx(saved["ae"]["recognizability"])
    assert stored["ceiling_copy_distance"] == pytest.approx(saved["copy"]["distance"])
    assert stored["latent_spread_ratio"] == pytest.approx(saved["latent_spread_ratio"]) and saved["latent_spread_ratio"] > 0
    assert 0 <= stored["nearest_exemplar_sampled"] <= 1 and 0 < stored["nearest_exemplar_real"] <= 1
    assert 0 < stored["wall_ceilings_s"] < row["wall_eval_s"]
    human_points = json.loads(next((tmp_path / "sweeps").rglob("evaluation_*.json")).read_text())["human_points"]
    assert stored["lake2015_recognizability"] == human_points["lake2015"]["recognizability"]
    # schema 5: the ink of the samples (as stored in the npz) and of the held-out drawings, as evaluation/ink.py gives
    import numpy as np

    from evaluation.ink import ink_stats

    samples = np.load(next((tmp_path / "sweeps").rglob("evaluation_*.npz")))["samples"]
    assert stored["ink_grey_share"] == pytest.approx(ink_stats(samples)["grey_share"])
    assert stored["ink_grey_share_human"] == pytest.approx(0.373, abs=0.001)  # Omniglot's held-out drawings
    assert stored["ink_grey_share_ae"] == pytest.approx(saved["ae"]["grey_share"]) and 0 <= saved["ae"]["grey_share"] <= 1
    assert row["sampler"] == "ddim" and row["sampler_steps"] == 2 and row["guidance"] == 1.0

    stored = pd.read_parquet(trial_path(spec.dir(), 0))
    assert len(stored) == 1 and stored.loc[0, "state"] == "COMPLETE"
    assert stored.loc[0, "param.w_prototype"] == 1.0 and stored.loc[0, "critics"] == row["critics"]
    run = trial_dir(spec.dir(), 0) / "run"
    assert (run / "rae.pt").is_file() and (run / "ldm.pt").is_file()
    assert list(run.glob("evaluation_*.json")), "the evaluation result lands next to the run"

    # Run again (a relaunch after the driver died between the row and the tell): nothing is trained again.
    stamp = (run / "rae.pt").stat().st_mtime_ns, (run / "ldm.pt").stat().st_mtime_ns
    again = run_trial(config, lambda stage, metrics: seen.append((stage, metrics)))
    assert again["state"] == "COMPLETE" and again["value_0"] == pytest.approx(row["value_0"])
    assert ((run / "rae.pt").stat().st_mtime_ns, (run / "ldm.pt").stat().st_mtime_ns) == stamp
    assert len(seen) == 3


def test_a_trial_evaluated_with_projected_guidance_names_the_rule(sweep_file, tmp_path, data_dir, critics_dir):
    """evaluation.guidance_rule reaches the sampler, the row and the samples' file name (which `sweep rescore`
    reads back), so a trial scored with our guidance is never mistaken for one scored with the paper's."""
    from search.rescore import samples_path
    from search.results import read_results

    spec, config = _config(sweep_file, tmp_path, data_dir, critics_dir, {"w_prototype": 1.0},
                           evaluation={"sampler": "ddim", "steps": 2, "guidance": 2.0, "guidance_rule": "projected",
                                       "critics": critics_dir})
    row = run_trial(config)
    assert row["state"] == "COMPLETE", row.get("error")
    assert row["guidance_rule"] == "projected" and row["guidance"] == 2.0
    stored = read_results(spec.dir()).iloc[0]
    assert stored["guidance_rule"] == "projected"
    npz = samples_path(stored)
    assert npz.name == "evaluation_ddim2_w2_projected_seed0.npz" and npz.is_file()
    import json

    assert json.loads(npz.with_suffix(".json").read_text())["guidance_rule"] == "projected"


def test_a_diverging_trial_is_recorded_as_failed_with_its_reason(sweep_file, tmp_path, data_dir, critics_dir):
    # A learning rate of 1e12 makes the LDM's loss NaN within its first steps: a real divergence.
    spec, config = _config(sweep_file, tmp_path, data_dir, critics_dir, {"w_prototype": 1.0},
                           train={"ldm": {"epochs": 1, "lr": 1.0e12}})
    row = run_trial(config)
    assert row["state"] == "FAIL"
    assert row["error"].startswith("TrainingDiverged: ldm loss became nan")
    assert row["last_step"] == 0  # the RAE stage had finished and reported
    stored = pd.read_parquet(trial_path(spec.dir(), 0))
    assert stored.loc[0, "state"] == "FAIL" and "TrainingDiverged" in stored.loc[0, "error"]
    assert pd.isna(stored.loc[0, "value_0"])


def test_a_trial_that_raises_is_failed_and_a_pruned_one_keeps_its_last_value(sweep_file, tmp_path, data_dir,
                                                                             critics_dir):
    spec, config = _config(sweep_file, tmp_path, data_dir, critics_dir, {"w_prototype": 1.0})
    # The trial's run directory already holds a run with another config: train_run refuses it (ConfigError).
    run = Path(config["run_dir"])
    run.mkdir(parents=True)
    other = copy.deepcopy(config["train"])
    other["seed"] = 7
    (run / "config.yaml").write_text(yaml.safe_dump(other))
    row = run_trial(config)
    assert row["state"] == "FAIL" and "ConfigError" in row["error"] and "another config" in row["error"]

    spec2, config2 = _config(sweep_file, tmp_path / "b", data_dir, critics_dir, {"w_prototype": 2.0})

    def prune_after_rae(stage, metrics):
        if stage == "rae_done":
            raise TrialPruned("stopped by the test after the RAE stage")

    row = run_trial(config2, prune_after_rae)
    assert row["state"] == "PRUNED" and row["error"] == "stopped by the test after the RAE stage"
    assert row["last_step"] == 0 and row["last_value"] > 0  # the held-out reconstruction error
    assert not (Path(config2["run_dir"]) / "ldm.pt").exists()  # the LDM never started
    assert pd.read_parquet(trial_path(spec2.dir(), 0)).loc[0, "state"] == "PRUNED"
