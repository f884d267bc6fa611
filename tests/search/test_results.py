"""The Parquet results store: typed round trip, atomic per-trial files, one-file export, warm start."""
from __future__ import annotations

import datetime as dt

import optuna
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from search.results import (COLUMNS, SCHEMA_VERSION, code_version, export, read_results, trial_path,
                            warm_start_params, write_trial_row)
from search.space import parse_space, suggest
from search.errors import SweepError
from search.spec import sweep_from_dict

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = parse_space({"families": {"none": {}, "kl": {"low": 1.0e-3, "high": 1.0}, "prototype": {"low": 0.1, "high": 100}},
                     "params": {"latent_size": {"choices": [32, 64]}}})
START = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


def full_row(trial: int, **params):
    return {
        "sweep": "s", "trial": trial, "state": "COMPLETE", "setting": params.get("family", "none"), "dataset": "omniglot",
        "originality": 1.1 + trial, "recognizability": 0.7, "distance": 0.25, "objective": "distance", "value_0": 0.25,
        "last_step": 0, "last_value": 123.5, "human_originality": 1.0, "human_recognizability": 0.8,
        "normalization": "relative", "critics": "abc123", "threshold": 0.3, "sampler": "ddim", "sampler_steps": 50, "guidance": 1.0,
        "seed": 0, "wall_rae_s": 10.0, "wall_ldm_s": 20.0, "wall_eval_s": 5.0, "wall_total_s": 36.0,
        "peak_rss_mb": 512.0, "code_version": "v0", "run_dir": f"sweeps/s/trials/{trial:05d}",
        "started_at": START, "finished_at": START + dt.timedelta(seconds=36), "params": params,
    }


def test_round_trip_keeps_values_and_types(tmp_path):
    write_trial_row(tmp_path, full_row(1, family="kl", w_kl=0.01, latent_size=64), space=SPACE)
    write_trial_row(tmp_path, full_row(0, family="none", latent_size=32), space=SPACE)
    write_trial_row(tmp_path, {"sweep": "s", "trial": 2, "state": "FAIL", "error": "loss became nan",
                               "params": {"family": "prototype", "w_prototype": 3.0, "latent_size": 32}}, space=SPACE)
    df = read_results(tmp_path)
    assert list(df["trial"]) == [0, 1, 2]  # sorted by trial number
    assert list(df.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert sorted(df.columns[len(COLUMNS):]) == ["param.family", "param.latent_size", "param.w_kl", "param.w_prototype"]
    row = df.iloc[1]
    assert (row["state"], row["param.family"], row["param.w_kl"], row["param.latent_size"]) == ("COMPLETE", "kl", 0.01, 64)
    assert pd.isna(row["param.w_prototype"])  # conditional: absent in a kl trial
    assert row["threshold"] == 0.3 and row["critics"] == "abc123"
    assert row["originality"] == 2.1 and row["sampler_steps"] == 50 and row["schema_version"] == SCHEMA_VERSION
    assert row["started_at"] == pd.Timestamp(START) and row["finished_at"] - row["started_at"] == pd.Timedelta(seconds=36)
    fail = df.iloc[2]
    assert fail["error"] == "loss became nan" and pd.isna(fail["distance"]) and pd.isna(fail["started_at"])
    assert str(df["distance"].dtype) == "float64" and str(df["trial"].dtype) == "int64"
    assert str(df["param.latent_size"].dtype) == "int64"
    assert str(df["started_at"].dtype) == "datetime64[us, UTC]"
    # the directory reads with plain pandas too: every file has the same columns
    plain = pd.read_parquet(tmp_path / "results").sort_values("trial").reset_index(drop=True)
    assert plain.shape == df.shape and list(plain["param.w_prototype"].isna()) == [True, True, False]


def test_rewriting_a_trial_replaces_its_row_and_leaves_no_temporary_files(tmp_path):
    path = write_trial_row(tmp_path, {"sweep": "s", "trial": 7, "state": "PRUNED", "last_value": 9.0})
    assert path == trial_path(tmp_path, 7) and path.name == "trial_00007.parquet"
    write_trial_row(tmp_path, {"sweep": "s", "trial": 7, "state": "COMPLETE", "distance": 0.5})
    df = read_results(tmp_path)
    assert len(df) == 1 and df.iloc[0]["state"] == "COMPLETE" and df.iloc[0]["distance"] == 0.5
    # a row that cannot be written leaves the previous file and no temporary behind
    with pytest.raises(ValueError, match="does not fit its column"):
        write_trial_row(tmp_path, {"sweep": "s", "trial": 7, "state": "FAIL", "seed": "zero"})
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["trial_00007.parquet"]
    assert read_results(tmp_path).iloc[0]["state"] == "COMPLETE"


@pytest.mark.parametrize("row, message", [
    ({"sweep": "s", "trial": 0, "state": "DONE"}, "state: expected one of"),
    ({"sweep": "s", "state": "FAIL"}, "trial: required"),
    ({"sweep": "s", "trial": -1, "state": "FAIL"}, "trial: expected an Optuna trial number"),
    ({"sweep": "s", "trial": 0, "state": "FAIL", "distanse": 1.0}, "distanse: unknown results column"),
    ({"sweep": "s", "trial": 0, "state": "FAIL", "schema_version": 99}, "schema_version"),
    ({"sweep": "s", "trial": 0, "state": "FAIL", "params": {"w_barlow": 1.0}}, "param.w_barlow: not a parameter"),
])
def test_bad_rows_are_refused(tmp_path, row, message):
    with pytest.raises(ValueError, match=message):
        write_trial_row(tmp_path, row, space=SPACE)
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_empty_and_missing_sweeps(tmp_path):
    df = read_results(tmp_path)
    assert df.empty and list(df.columns) == list(COLUMNS)
    with pytest.raises(FileNotFoundError, match="sweep directory not found"):
        read_results(tmp_path / "absent")


def test_export_writes_one_file(tmp_path):
    for n in range(3):
        write_trial_row(tmp_path / "sw", full_row(n, family="kl", w_kl=0.1 * (n + 1), latent_size=32), space=SPACE)
    out = tmp_path / "out" / "all.parquet"
    assert export(tmp_path / "sw", out) == 3
    exported = pd.read_parquet(out)
    assert list(exported["trial"]) == [0, 1, 2] and exported["param.w_kl"].tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert pq.read_schema(out).field("trial").type == "int64"


def test_rows_before_schema_4_read_with_the_papers_guidance_rule(tmp_path):
    write_trial_row(tmp_path, {**full_row(0), "guidance_rule": "projected"}, space=SPACE)
    write_trial_row(tmp_path, full_row(1), space=SPACE)
    path = trial_path(tmp_path, 1)  # trial 1 as a schema-3 file: no guidance_rule column
    table = pq.read_table(path).drop_columns(["guidance_rule"])
    pq.write_table(table.set_column(0, "schema_version", pa.array([3], type=pa.int32())), path)
    write_trial_row(tmp_path, {"sweep": "s", "trial": 2, "state": "FAIL"})
    df = read_results(tmp_path).set_index("trial")
    assert df.loc[0, "guidance_rule"] == "projected" and df.loc[1, "guidance_rule"] == "cfg"
    assert pd.isna(df.loc[2, "guidance_rule"])  # a trial that never sampled has no rule
    pq.write_table(pq.read_table(trial_path(tmp_path, 0)).drop_columns(["guidance_rule"]), trial_path(tmp_path, 0))
    pq.write_table(pq.read_table(trial_path(tmp_path, 2)).drop_columns(["guidance_rule"]), trial_path(tmp_path, 2))
    assert list(read_results(tmp_path)["guidance_rule"].fillna("-")) == ["cfg", "cfg", "-"]  # no file has it


def test_rows_before_schema_5_read_without_ink(tmp_path):
    """A schema-4 file (no ink columns, as every row committed before 2026-12-06) reads beside a schema-5 one."""
    write_trial_row(tmp_path, {**full_row(0), "ink_grey_share": 0.9, "ink_grey_share_human": 0.37}, space=SPACE)
    write_trial_row(tmp_path, full_row(1), space=SPACE)
    path = trial_path(tmp_path, 1)
    table = pq.read_table(path).drop_columns(["ink_grey_share", "ink_grey_share_human"])
    pq.write_table(table.set_column(0, "schema_version", pa.array([4], type=pa.int32())), path)
    df = read_results(tmp_path).set_index("trial")
    assert df.loc[0, "ink_grey_share"] == 0.9 and pd.isna(df.loc[1, "ink_grey_share"])
    assert list(df["schema_version"]) == [SCHEMA_VERSION, 4]


def test_rows_before_schema_6_read_as_trials_that_ran(tmp_path):
    """A schema-5 file (no reused_from, as every row committed before 2026-12-07 evening) reads beside a schema-6
    one as a trial that ran; a reused row is left out of rankings (search.report.completed)."""
    from search.report import completed, reused_count

    write_trial_row(tmp_path, full_row(0), space=SPACE)
    write_trial_row(tmp_path, {**full_row(1), "reused_from": 0}, space=SPACE)
    write_trial_row(tmp_path, full_row(2), space=SPACE)
    path = trial_path(tmp_path, 2)
    table = pq.read_table(path).drop_columns(["reused_from"])
    pq.write_table(table.set_column(0, "schema_version", pa.array([5], type=pa.int32())), path)
    df = read_results(tmp_path)
    assert list(df["schema_version"]) == [SCHEMA_VERSION, SCHEMA_VERSION, 5] and SCHEMA_VERSION == 6
    assert df["reused_from"].tolist()[1] == 0 and df["reused_from"].isna().tolist() == [True, False, True]
    assert list(completed(df)["trial"]) == [0, 2] and reused_count(df) == 1
    assert reused_count(df.drop(columns=["reused_from"])) == 0


def test_newer_schema_is_refused(tmp_path):
    write_trial_row(tmp_path, {"sweep": "s", "trial": 0, "state": "FAIL"})
    path = trial_path(tmp_path, 0)
    table = pq.read_table(path)
    table = table.set_column(0, "schema_version", pa.array([SCHEMA_VERSION + 1], type=pa.int32()))
    pq.write_table(table, path)
    with pytest.raises(ValueError, match="newer"):
        read_results(tmp_path)


def test_warm_start_from_an_earlier_sweep_yields_its_finished_configurations(tmp_path, data_dir):
    earlier = tmp_path / "earlier"
    rows = [
        ("COMPLETE", {"family": "kl", "w_kl": 0.5, "latent_size": 64}),
        ("PRUNED", {"family": "prototype", "w_prototype": 5.0, "latent_size": 32}),
        ("FAIL", {"family": "none", "latent_size": 64}),
        ("COMPLETE", {"family": "prototype", "w_prototype": 2.0, "latent_size": 32}),
        ("COMPLETE", {"family": "kl", "w_kl": 0.5, "latent_size": 64}),  # the same configuration again
    ]
    for n, (state, params) in enumerate(rows):
        write_trial_row(earlier, {"sweep": "earlier", "trial": n, "state": state, "params": params}, space=SPACE)
    export(earlier, tmp_path / "earlier.parquet")
    raw = {"name": "later", "train": {"preset": "quick", "data": {"data_dir": str(data_dir)}}, "n_trials": 5,
           "search": {"families": {"none": {}, "kl": {"low": 1.0e-3, "high": 1.0}, "prototype": {"low": 1.0, "high": 3.0}},
                      "params": {"latent_size": {"choices": [32, 64]}}},
           "warm_start": {"configs": [{"family": "none", "latent_size": 32}],
                          "parquet": [str(earlier), str(tmp_path / "earlier.parquet")]}}
    spec = sweep_from_dict(raw)
    configs = warm_start_params(spec)
    assert configs == [{"family": "none", "latent_size": 32},
                       {"family": "kl", "w_kl": 0.5, "latent_size": 64},
                       {"family": "prototype", "w_prototype": 2.0, "latent_size": 32}]
    assert isinstance(configs[1]["latent_size"], int)
    # they seed a real study: the first trials asked are exactly these configurations
    study = optuna.create_study()
    for params in configs:
        study.enqueue_trial(params, skip_if_exists=True)
    asked = []
    for _ in configs:
        trial = study.ask()
        asked.append(suggest(trial, spec.space))
        study.tell(trial, 1.0)
    assert asked == configs


def test_warm_start_best_takes_an_earlier_sweeps_nearest_configurations_nearest_first(tmp_path, data_dir):
    """warm_start.best = K: the K configurations of the earlier sweep nearest to people, nearest first; a
    configuration trained with two seeds ranks by its mean distance; a reused row, a failed one and one outside the
    space do not count."""
    earlier = tmp_path / "earlier"
    rows = [  # (state, params, distance, reused_from)
        ("COMPLETE", {"family": "kl", "w_kl": 0.5, "latent_size": 64}, 0.40, None),
        ("COMPLETE", {"family": "prototype", "w_prototype": 2.0, "latent_size": 32}, 0.20, None),
        ("COMPLETE", {"family": "none", "latent_size": 64}, 0.30, None),
        ("FAIL", {"family": "prototype", "w_prototype": 1.5, "latent_size": 32}, None, None),
        ("COMPLETE", {"family": "prototype", "w_prototype": 2.0, "latent_size": 32}, 0.50, None),  # mean 0.35
        ("COMPLETE", {"family": "none", "latent_size": 64}, 0.30, 2),  # reused: not a second observation
        ("COMPLETE", {"family": "prototype", "w_prototype": 9.0, "latent_size": 32}, 0.01, None),  # outside
    ]
    for n, (state, params, distance, reused) in enumerate(rows):
        write_trial_row(earlier, {"sweep": "earlier", "trial": n, "state": state, "params": params,
                                  "distance": distance, "reused_from": reused}, space=SPACE)
    raw = {"name": "later", "train": {"preset": "quick", "data": {"data_dir": str(data_dir)}}, "n_trials": 5,
           "search": {"families": {"none": {}, "kl": {"low": 1.0e-3, "high": 1.0}, "prototype": {"low": 1.0, "high": 3.0}},
                      "params": {"latent_size": {"choices": [32, 64]}}},
           "warm_start": {"parquet": str(earlier), "best": 2}}
    assert warm_start_params(sweep_from_dict(raw)) == [{"family": "none", "latent_size": 64},
                                                       {"family": "prototype", "w_prototype": 2.0, "latent_size": 32}]
    raw["warm_start"]["best"] = 10  # more than it holds: all three, nearest first
    assert [c["family"] for c in warm_start_params(sweep_from_dict(raw))] == ["none", "prototype", "kl"]
    # a second source (another seed of KL 0.5) is pooled with the first: KL's mean 0.2 now ranks first
    write_trial_row(tmp_path / "seed1", {"sweep": "seed1", "trial": 0, "state": "COMPLETE", "distance": 0.0,
                                         "params": {"family": "kl", "w_kl": 0.5, "latent_size": 64}}, space=SPACE)
    raw["warm_start"] = {"parquet": [str(earlier), str(tmp_path / "seed1")], "best": 2}
    assert [c["family"] for c in warm_start_params(sweep_from_dict(raw))] == ["kl", "none"]


def test_a_screen_reorders_a_grid_each_point_once(tmp_path, data_dir):
    """sampler grid + warm_start {parquet, best}: the screen's nearest configurations that are grid points run
    first (one that is not a grid point is skipped), then the rest of the grid in file order, every point once."""
    from search.samplers import make_sampler
    from search.study import enqueue_warm_start

    earlier = tmp_path / "earlier"
    rows = [({"family": "prototype", "w_prototype": 1.0, "latent_size": 32}, 0.5),
            ({"family": "kl", "w_kl": 0.01, "latent_size": 32}, 0.2),
            ({"family": "prototype", "w_prototype": 2.0, "latent_size": 32}, 0.1),  # not a grid point
            ({"family": "none", "latent_size": 32}, 0.3)]
    for n, (params, distance) in enumerate(rows):
        write_trial_row(earlier, {"sweep": "earlier", "trial": n, "state": "COMPLETE", "params": params,
                                  "distance": distance}, space=SPACE)
    raw = {"name": "later", "train": {"preset": "quick", "data": {"data_dir": str(data_dir)}}, "sampler": "grid",
           "search": {"families": {"none": {}, "kl": {"choices": [0.01, 0.1]}, "prototype": {"choices": [1.0, 3.0]}},
                      "params": {"latent_size": {"choices": [32]}}},
           "warm_start": {"parquet": str(earlier), "best": 2}}
    spec = sweep_from_dict(raw)
    assert warm_start_params(spec) == [{"family": "kl", "w_kl": 0.01, "latent_size": 32},
                                       {"family": "none", "latent_size": 32}]
    study = optuna.create_study(sampler=make_sampler(spec))
    assert enqueue_warm_start(study, spec) == 2
    asked = []
    for _ in range(spec.n_trials):
        trial = study.ask()
        asked.append(suggest(trial, spec.space))
        study.tell(trial, 1.0)
    assert spec.n_trials == 5 and asked == [
        {"family": "kl", "w_kl": 0.01, "latent_size": 32}, {"family": "none", "latent_size": 32},
        {"family": "kl", "w_kl": 0.1, "latent_size": 32},
        {"family": "prototype", "w_prototype": 1.0, "latent_size": 32},
        {"family": "prototype", "w_prototype": 3.0, "latent_size": 32}]
    raw["warm_start"] = {"configs": [{"family": "prototype", "w_prototype": 2.0, "latent_size": 32}]}
    with pytest.raises(SweepError, match=r"warm_start.configs\[0\].w_prototype: 2.0 lies outside the space"):
        sweep_from_dict(raw)


def test_code_version_is_recorded():
    assert isinstance(code_version(), str) and code_version()


def test_warm_start_best_in_a_pareto_sweep_takes_the_screens_front_first(tmp_path, data_dir):
    """objective pareto: the K configurations come by Pareto layer of their deviations from the human point, then
    by distance within a layer; a distance sweep over the same rows ranks by distance alone."""
    earlier = tmp_path / "earlier"
    human = {"human_originality": 1.0, "human_recognizability": 1.0, "normalization": "relative"}
    rows = [  # (params, originality, recognizability): deviations (|do|, |dr|), distance
        ({"family": "none", "latent_size": 64}, 1.00, 0.50),  # (0.00, 0.50), 0.50: on the front
        ({"family": "prototype", "w_prototype": 2.0, "latent_size": 32}, 1.30, 0.70),  # (0.30, 0.30), 0.42: dominated
        ({"family": "kl", "w_kl": 0.5, "latent_size": 64}, 1.20, 0.80),  # (0.20, 0.20), 0.28: front
        ({"family": "kl", "w_kl": 0.1, "latent_size": 32}, 0.95, 0.75),  # (0.05, 0.25), 0.25: front
    ]
    for n, (params, o, r) in enumerate(rows):
        d = ((o - 1.0) ** 2 + (r - 1.0) ** 2) ** 0.5
        write_trial_row(earlier, {"sweep": "earlier", "trial": n, "state": "COMPLETE", "params": params,
                                  "originality": o, "recognizability": r, "distance": d, **human}, space=SPACE)
    raw = {"name": "later", "train": {"preset": "quick", "data": {"data_dir": str(data_dir)}}, "n_trials": 5,
           "search": {"families": {"none": {}, "kl": {"low": 1.0e-3, "high": 1.0}, "prototype": {"low": 1.0, "high": 3.0}},
                      "params": {"latent_size": {"choices": [32, 64]}}},
           "objective": "pareto", "warm_start": {"parquet": str(earlier), "best": 3}}

    def chosen():
        return [(c["family"], c.get("w_kl")) for c in warm_start_params(sweep_from_dict(raw))]

    assert chosen() == [("kl", 0.1), ("kl", 0.5), ("none", None)]  # the front, by distance
    raw["warm_start"]["best"] = 4
    assert chosen()[-1] == ("prototype", None)  # then the next layer
    raw["objective"], raw["warm_start"]["best"] = "distance", 3
    assert chosen() == [("kl", 0.1), ("kl", 0.5), ("prototype", None)]  # by distance alone


def test_pareto_layers_peel_fronts():
    from search.report import pareto_layers

    values = [(0.0, 0.5), (0.3, 0.3), (0.2, 0.2), (0.05, 0.25), (0.3, 0.3), (0.4, 0.4)]
    assert list(pareto_layers(values)) == [0, 1, 0, 0, 1, 2]  # equal points share a layer
