"""Sweep files: every mistake stops with the key that holds it; valid files give the documented defaults."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import yaml

from search.spec import SweepError, load_sweep, objective_values, resolve_storage, sweep_from_dict

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def raw(data_dir):
    """A small valid sweep as a parsed file would give it."""
    return {
        "name": "t",
        "train": {"preset": "quick", "data": {"dataset": "omniglot", "data_dir": str(data_dir)}},
        "search": {"regularizers": {"prototype": {"low": 0.1, "high": 100}, "barlow": {"low": 1.0, "high": 100}}},
        "n_trials": 4,
    }


def error_of(raw) -> str:
    with pytest.raises(SweepError) as info:
        sweep_from_dict(raw)
    return str(info.value)


def test_defaults_of_a_minimal_sweep(raw):
    spec = sweep_from_dict(raw)
    assert spec.dir() == Path("sweeps") / "t"
    assert (spec.sampler.name, spec.objective, spec.max_concurrent, spec.storage) == ("tpe", "distance", 1, None)
    assert spec.resources == {"cpu": 1.0, "gpu": 0.0}
    assert spec.pruner["name"] == "median"
    assert spec.directions == ["minimize"]
    # the score is DDPM's unless the file asks (SPEC part 0), whatever sampler the preset draws its picture grid with
    assert (spec.evaluation["sampler"], spec.evaluation["steps"], spec.evaluation["guidance"]) == ("ddpm", None, 1.0)
    # asked for DDIM without steps: the preset's DDIM steps (the quick preset: 50)
    ddim = sweep_from_dict({**raw, "evaluation": {"sampler": "ddim"}})
    assert (ddim.evaluation["sampler"], ddim.evaluation["steps"]) == ("ddim", 50)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.n_trials = 5


def test_load_sweep_reads_yaml_names_it_after_the_file_and_applies_overrides(tmp_path, raw, data_dir):
    del raw["name"]
    path = tmp_path / "my-sweep.yaml"
    path.write_text(yaml.safe_dump(raw))
    spec = load_sweep(path, overrides={"n_trials": 9, "resources.gpu": 0.25})
    assert (spec.name, spec.n_trials, spec.resources["gpu"]) == ("my-sweep", 9, 0.25)


TRAIN_EXAMPLES = ("quick", "paper")  # `humanlike train` configs; every other example is a sweep


@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("*.yaml") if p.stem not in TRAIN_EXAMPLES))
def test_example_sweeps_load(name, data_dir):
    spec = load_sweep(EXAMPLES / f"{name}.yaml", overrides={"train.data.data_dir": str(data_dir)})
    assert spec.name == name and spec.n_trials >= 1


COMMITTED = EXAMPLES.parent / "results"  # sweeps whose rows and journal are in the repository


@pytest.mark.parametrize("name", sorted(p.parent.name for p in COMMITTED.glob("*/sweep.yaml")
                                        if (EXAMPLES / f"{p.parent.name}.yaml").is_file()))
def test_example_still_resumes_its_committed_sweep(name, data_dir):
    """`humanlike sweep run examples/NAME.yaml` continues the sweep in results/NAME (an example edited so that it
    changes the sweep's shape would be refused there, and the documented command would no longer resume)."""
    from search.study import check_saved_spec

    spec = load_sweep(EXAMPLES / f"{name}.yaml",
                      overrides={"train.data.data_dir": str(data_dir), "root": str(COMMITTED)})
    assert (spec.dir() / "sweep.yaml").is_file()
    check_saved_spec(spec)  # raises SweepError naming the changed key


@pytest.mark.parametrize("name", TRAIN_EXAMPLES)
def test_example_train_configs_load(name):
    from models.config import load_config

    config = load_config(EXAMPLES / f"{name}.yaml")
    assert config.preset == name and config.rae.regularizers and config.data.dataset == "omniglot"


def test_quickstart_is_the_readme_job(data_dir):
    spec = load_sweep(EXAMPLES / "quickstart.yaml", overrides={"train.data.data_dir": str(data_dir)})
    assert spec.dataset == "omniglot" and spec.train["preset"] == "quick"
    assert spec.space.param_names() == ["w_prototype", "w_barlow"]
    assert (spec.max_concurrent, spec.resources["cpu"], spec.storage) == (2, 1.0, None)
    assert (spec.evaluation["sampler"], spec.evaluation["steps"]) == ("ddim", 50)


def test_malformed_yaml_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nsearch: {regularizers: [\n")
    with pytest.raises(SweepError, match=r"bad\.yaml: not valid YAML"):
        load_sweep(path)
    path.write_text("- just\n- a list\n")
    with pytest.raises(SweepError, match="expected a mapping at the top level"):
        load_sweep(path)
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_sweep(tmp_path / "nope.yaml")


@pytest.mark.parametrize("edit, key", [
    (lambda r: r["search"]["regularizers"].update(protoype={"low": 1.0, "high": 2.0}),
     "search.regularizers.protoype: unknown regularizer"),
    (lambda r: r["search"]["regularizers"].update(prototype={"low": 10.0, "high": 1.0}),
     "search.regularizers.prototype: empty or inverted range"),
    (lambda r: r["search"]["regularizers"].update(prototype={"low": 1.0, "high": 1.0}),
     "search.regularizers.prototype: empty or inverted range"),
    (lambda r: r["search"]["regularizers"].update(prototype={"low": 0.0, "high": 1.0}),
     "search.regularizers.prototype.low: a log-uniform range needs low > 0"),
    (lambda r: r["search"]["regularizers"].update(prototype={"low": -1.0, "high": 1.0, "log": False}),
     "search.regularizers.prototype.low: a weight must be >= 0"),
    (lambda r: r.update(sampler={"name": "cmaes"}), "sampler.name: unknown value 'cmaes'"),
    (lambda r: r.update(sampler="nsga2"), "sampler.name: nsga2 searches a Pareto front"),
    (lambda r: r.update(resources={"cpu": 0}), "resources.cpu: must be a number > 0"),
    (lambda r: r.update(resources={"cpu": 1, "gpu": -0.5}), "resources.gpu: must be a number >= 0"),
    (lambda r: r.update(resources={"tpu": 1}), "resources.tpu: unknown key"),
    (lambda r: r.update(max_concurrent=0), "max_concurrent: must be an integer >= 1"),
    (lambda r: r.pop("n_trials"), "n_trials: missing"),
    (lambda r: r.update(objective="closest"), "objective: unknown value 'closest'"),
    (lambda r: r.update(name="My Sweep"), "name: must be lowercase"),
    (lambda r: r.update(resume=True), "resume: unknown key"),
    (lambda r: r["train"].update(rae={"epochs": 0}), "train.rae.epochs: must be > 0"),
    (lambda r: r["train"].update(rae={"regularizers": {"prototype": 1.0}}),
     "search.regularizers.prototype: also set in train.rae.regularizers"),
    (lambda r: r.update(storage="redis://host"), "storage: unsupported URL scheme 'redis'"),
    (lambda r: r.update(evaluation={"sampler": "ddpm", "steps": 50}), "evaluation.steps: DDPM runs every timestep"),
    (lambda r: r.update(evaluation={"guidance": -1}), "evaluation.guidance: must be a number >= 0"),
    (lambda r: r.update(evaluation={"guidance_rule": "apg"}), "evaluation.guidance_rule: unknown value 'apg'"),
    (lambda r: r.update(pruner={"name": "hyperband"}), "pruner.name: unknown value 'hyperband'"),
    (lambda r: r.update(objective="pareto", pruner="median"), "pruner.name: median cannot prune"),
    (lambda r: r.update(warm_start={"configs": [{"w_prototype": 1000.0}]}),
     "warm_start.configs[0].w_prototype: 1000.0 lies outside the space"),
    (lambda r: r.update(warm_start={"configs": [{"w_kl": 1.0}]}), "warm_start.configs[0].w_kl: not a searched"),
    (lambda r: r.update(warm_start={"parquet": "/no/such/sweep"}), "warm_start.parquet: /no/such/sweep does not exist"),
    (lambda r: r.update(warm_start={"configs": [{"w_prototype": 1.0}], "best": 2}),
     "warm_start.best: ranks an earlier sweep's trials; give warm_start.parquet too"),
    (lambda r: r.update(warm_start={"configs": [{"w_prototype": 1.0}], "best": 0}), "warm_start.best: expected a whole"),
    (lambda r: r.update(warm_start={"configs": [{"w_prototype": 1.0}], "best": 2.5}), "warm_start.best: expected a whole"),
])
def test_each_mistake_names_its_key(raw, edit, key):
    edit(raw)
    assert key in error_of(raw)


def test_missing_dataset_directory_and_missing_dataset(raw, tmp_path):
    raw["train"]["data"]["data_dir"] = str(tmp_path / "absent")
    assert "train.data.data_dir: data directory" in error_of(raw)
    raw["train"]["data"]["data_dir"] = str(tmp_path)  # exists, but holds no Omniglot
    assert "train.data.dataset: omniglot not found" in error_of(raw)
    assert sweep_from_dict(raw, check_data=False).name == "t"  # status/report do not need the data


def test_every_mistake_is_reported_at_once(raw):
    raw.update(sampler="nope", resources={"cpu": -1}, max_concurrent=0)
    raw["search"]["regularizers"]["kll"] = 1.0
    message = error_of(raw)
    assert message.startswith("4 mistakes")
    for key in ("sampler.name", "resources.cpu", "max_concurrent", "search.regularizers.kll"):
        assert key in message


def test_grid_trial_count(raw):
    raw.update(sampler="grid")
    raw["search"] = {"families": {"none": {}, "kl": {"choices": [0.01, 0.1]}, "barlow": {"choices": [1.0, 10.0]}}}
    raw.pop("n_trials")
    assert sweep_from_dict(raw).n_trials == 5
    raw["n_trials"] = 6
    assert "n_trials: 6 is more than the 5 grid points" in error_of(raw)
    raw["n_trials"] = 3
    assert sweep_from_dict(raw).n_trials == 3
    raw["search"]["families"]["kl"] = {"low": 0.01, "high": 0.1}
    assert "search.families.kl: sampler grid needs a list of values" in error_of(raw)


def test_gp_is_refused_for_the_conditional_space(raw):
    raw.update(sampler="gp", search={"families": {"none": {}, "kl": {"low": 0.01, "high": 1.0}}})
    assert "sampler.name: gp cannot model the conditional space" in error_of(raw)


def test_pareto_defaults(raw):
    raw.update(objective="pareto", sampler="motpe")
    spec = sweep_from_dict(raw)
    assert spec.directions == ["minimize", "minimize"] and spec.pruner == {"name": "none"}


def test_storage_from_the_environment_is_read_only_when_needed(raw, monkeypatch):
    raw["storage"] = "env:HUMANLIKE_TEST_DB"
    spec = sweep_from_dict(raw)
    assert spec.storage == "env:HUMANLIKE_TEST_DB"  # the URL (and its password) is never stored
    monkeypatch.delenv("HUMANLIKE_TEST_DB", raising=False)
    with pytest.raises(SweepError, match="storage: environment variable HUMANLIKE_TEST_DB is not set"):
        resolve_storage(spec)
    monkeypatch.setenv("HUMANLIKE_TEST_DB", "postgresql://u:p@db/optuna")
    assert resolve_storage(spec) == "postgresql://u:p@db/optuna"
    raw["storage"] = None
    assert resolve_storage(sweep_from_dict(raw)) is None


def test_objective_values_follow_the_spec_formula():
    o, r, ho, hr = 1.3, 0.6, 1.0, 0.8
    (d,) = objective_values("distance", originality=o, recognizability=r, human_originality=ho,
                            human_recognizability=hr)
    assert d == pytest.approx(math.sqrt(0.3**2 + 0.25**2))  # SPEC part 0: each axis divided by the human value
    assert objective_values("pareto", originality=o, recognizability=r, human_originality=ho,
                            human_recognizability=hr) == pytest.approx((0.3, 0.25))
    (a,) = objective_values("distance", originality=o, recognizability=r, human_originality=ho,
                            human_recognizability=hr, normalization="absolute")
    assert a == pytest.approx(math.sqrt(0.3**2 + 0.2**2))
