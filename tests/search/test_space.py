"""Search spaces: sampled values stay inside their ranges, fixed weights stay fixed, the family space is
conditional, and a trial's parameters become the right training config and evaluation settings."""
from __future__ import annotations

import math

import optuna
import pytest

from search.space import (Choice, Fixed, Range, check_params, evaluation_for, grid_points, parse_space, suggest,
                          train_config_for)
from search.spec import SweepError, sweep_from_dict

optuna.logging.set_verbosity(optuna.logging.WARNING)


def make_spec(data_dir, search, **extra):
    raw = {"name": "s", "train": {"preset": "quick", "data": {"data_dir": str(data_dir)}}, "search": search,
           "n_trials": 10, **extra}
    return sweep_from_dict(raw)


def sample(space, n, seed=0):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        params = suggest(trial, space)
        assert params == trial.params  # suggest returns exactly what Optuna stored
        out.append(params)
        study.tell(trial, 0.0)
    return out


def test_weights_mode_samples_inside_ranges_and_keeps_fixed_weights(data_dir):
    spec = make_spec(data_dir, {"regularizers": {"prototype": {"low": 0.1, "high": 100}, "barlow": 10.0,
                                                 "kl": {"value": 0}}})
    assert spec.space.regularizers["barlow"] == Fixed(10.0) and spec.space.regularizers["kl"] == Fixed(0.0)
    draws = sample(spec.space, 200)
    assert all(set(p) == {"w_prototype"} and 0.1 <= p["w_prototype"] <= 100 for p in draws)
    # log-uniform: half the draws fall below the geometric mean of the bounds (sqrt(0.1 * 100) = 3.16)
    below = sum(p["w_prototype"] < math.sqrt(10.0) for p in draws) / len(draws)
    assert 0.4 < below < 0.6
    cfg = train_config_for(spec, draws[0])
    assert cfg.rae.regularizers == {"prototype": draws[0]["w_prototype"], "barlow": 10.0, "kl": 0.0}
    assert cfg.rae.active == {"barlow": 10.0, "prototype": draws[0]["w_prototype"]}  # weight 0 = not built
    assert cfg.rae.epochs == 6  # the quick preset underneath


def test_linear_range_when_log_is_off(data_dir):
    spec = make_spec(data_dir, {"regularizers": {"kl": {"low": 0.0, "high": 1.0, "log": False}}})
    draws = [p["w_kl"] for p in sample(spec.space, 200)]
    assert all(0.0 <= w <= 1.0 for w in draws)
    assert 0.4 < sum(w < 0.5 for w in draws) / len(draws) < 0.6  # uniform: half below the midpoint


def test_family_mode_is_conditional_and_covers_every_setting(data_dir):
    families = {"none": {}, "kl": {"low": 1.0e-3, "high": 10.0}, "vq": 1.0, "classification": {"choices": [0.1, 1.0]},
                "prototype": {"low": 0.1, "high": 100}, "simclr": {"low": 0.1, "high": 10}, "barlow": {"low": 1.0, "high": 100}}
    spec = make_spec(data_dir, {"families": families})
    assert spec.space.mode == "family"
    seen = set()
    for params in sample(spec.space, 120):
        family = params["family"]
        seen.add(family)
        weights = {k for k in params if k.startswith("w_")}
        if family in ("none", "vq"):  # no weight, or a fixed one: nothing more to suggest
            assert weights == set()
        else:
            assert weights == {f"w_{family}"}  # exactly its own weight, no other family's
        expected = {} if family == "none" else {family: 1.0 if family == "vq" else params[f"w_{family}"]}
        assert train_config_for(spec, params).rae.regularizers == expected
        if family == "kl":
            assert 1e-3 <= params["w_kl"] <= 10.0
        if family == "classification":
            assert params["w_classification"] in (0.1, 1.0)
    assert seen == set(families)


def test_other_parameters_reach_the_config_and_the_evaluation(data_dir):
    spec = make_spec(data_dir, {"regularizers": {"prototype": {"low": 0.1, "high": 10}},
                                "params": {"guidance": {"low": 0.0, "high": 4.0}, "latent_size": {"choices": [32, 64]},
                                           "rae.lr": {"low": 1.0e-5, "high": 1.0e-3, "log": True},
                                           "ldm.epochs": {"low": 2, "high": 5}}})
    assert spec.space.params["ldm.epochs"] == Range(low=2, high=5, log=False, integer=True)
    for params in sample(spec.space, 30):
        cfg = train_config_for(spec, params)
        assert cfg.latent_size == params["latent_size"] in (32, 64)
        assert cfg.rae.lr == params["rae.lr"] and 1e-5 <= cfg.rae.lr <= 1e-3
        assert isinstance(params["ldm.epochs"], int) and cfg.ldm.epochs == params["ldm.epochs"]
        assert 0.0 <= params["guidance"] <= 4.0
        assert cfg.sample.guidance == params["guidance"]
        assert evaluation_for(spec, params)["guidance"] == params["guidance"]
        untouched = {k: v for k, v in evaluation_for(spec, params).items() if k != "guidance"}
        assert untouched == {k: v for k, v in spec.evaluation.items() if k != "guidance"}  # from the sweep
        assert untouched["sampler"] == "ddpm" and untouched["steps"] is None  # the default: DDPM, every step


def test_the_sample_grid_shows_the_evaluated_guidance_when_it_is_fixed_by_the_sweep(data_dir):
    """A sweep that evaluates with projected guidance at w 2 (not the preset's CFG at w 1) trains runs whose
    samples.png is drawn the same way; a sweep that says nothing keeps the preset's sample section."""
    spec = make_spec(data_dir, {"regularizers": {"prototype": {"low": 0.1, "high": 10}}},
                     evaluation={"guidance": 2.0, "guidance_rule": "projected"})
    plain = make_spec(data_dir, {"regularizers": {"prototype": {"low": 0.1, "high": 10}}})
    for params in sample(spec.space, 3):
        cfg = train_config_for(spec, params)
        assert (cfg.sample.guidance, cfg.sample.guidance_rule) == (2.0, "projected")
        default = train_config_for(plain, params).sample
        assert (default.guidance, default.guidance_rule) == (1.0, "cfg") == (plain.evaluation["guidance"],
                                                                              plain.evaluation["guidance_rule"])


@pytest.mark.parametrize("search, key", [
    ({"regularizers": {"none": 1.0}}, "search.regularizers.none: unknown regularizer"),
    ({"families": {"protoype": {"low": 1.0, "high": 2.0}}}, "search.families.protoype: unknown regularizer"),
    ({"families": {"kl": {}}}, "search.families.kl: needs a weight"),
    ({"families": {"none": 1.0, "kl": 1.0}}, "search.families.none: the setting without a regularizer"),
    ({"regularizers": {"kl": {"low": "1e-3", "high": 1.0}}}, "search.regularizers.kl.low: expected a number"),
    ({"regularizers": {"kl": {"low": 0.1}}}, "search.regularizers.kl: a range needs both low and high"),
    ({"regularizers": {"kl": {"low": 0.1, "high": 1.0, "step": 0.1}}}, "search.regularizers.kl: unknown key step"),
    ({"regularizers": {"kl": {"choices": []}}}, "search.regularizers.kl.choices: expected a non-empty list"),
    ({"regularizers": {"kl": 0.5}}, "search: nothing to search"),
    ({"regularizers": {"kl": 0.5}, "params": {"dropout": {"low": 0.0, "high": 1.0}}}, "search.params.dropout: unknown parameter"),
    ({"regularizers": {"kl": 0.5}, "params": {"latent_size": {"choices": [0, 64]}}}, "search.params.latent_size: value 0"),
    ({"regularizers": {"kl": 0.5}, "params": {"latent_size": {"low": 16.5, "high": 64}}}, "search.params.latent_size.low: expected an integer"),
    ({"regularizers": {"kl": 0.5}, "params": {"rae.epochs": {"low": 1, "high": 3}}}, "search.params.rae.epochs: also set in train.rae.epochs"),
    ({"regularizers": {"kl": 0.5}, "params": {"augmentation": {"low": 1, "high": 3}}}, "search.params.augmentation: a str setting has no range"),
    ({"mode": "family", "regularizers": {"kl": {"low": 0.1, "high": 1.0}}}, "search.regularizers: not used in mode family"),
    ({"mode": "weights", "families": {"kl": {"low": 0.1, "high": 1.0}}}, "search.families: only in mode family"),
    ({"mode": "joint"}, "search.mode: unknown value 'joint'"),
])
def test_space_mistakes_name_their_key(search, key):
    with pytest.raises(SweepError) as info:
        parse_space(search, train={"preset": "quick", "rae": {"epochs": 2}})
    assert key in str(info.value)


def test_grid_points_enumerate_products_and_unions():
    weights = parse_space({"regularizers": {"prototype": {"choices": [0.1, 1.0, 10.0]}, "barlow": {"choices": [1.0, 10.0]},
                                            "kl": 0.0}}, grid=True)
    points = grid_points(weights)
    assert len(points) == 6 and len({tuple(sorted(p.items())) for p in points}) == 6
    assert points[0] == {"w_prototype": 0.1, "w_barlow": 1.0}
    family = parse_space({"families": {"none": {}, "kl": {"choices": [0.01, 0.1]}, "vq": 2.0},
                          "params": {"guidance": {"choices": [0.5, 1.0]}}}, grid=True)
    assert grid_points(family) == [
        {"family": "none", "guidance": 0.5}, {"family": "none", "guidance": 1.0},
        {"family": "kl", "w_kl": 0.01, "guidance": 0.5}, {"family": "kl", "w_kl": 0.01, "guidance": 1.0},
        {"family": "kl", "w_kl": 0.1, "guidance": 0.5}, {"family": "kl", "w_kl": 0.1, "guidance": 1.0},
        {"family": "vq", "guidance": 0.5}, {"family": "vq", "guidance": 1.0},
    ]
    assert family.families["kl"] == Choice((0.01, 0.1))  # YAML ints and floats both become float weights


def test_check_params_enforces_the_conditional_structure():
    space = parse_space({"families": {"none": {}, "kl": {"low": 0.01, "high": 1.0}, "barlow": {"low": 1.0, "high": 10.0}}})
    check_params(space, {"family": "kl", "w_kl": 0.5})
    check_params(space, {"family": "none"})
    check_params(space, {})  # partial: the sampler fills in the rest
    with pytest.raises(SweepError, match=r"c\.w_barlow: belongs to family barlow"):
        check_params(space, {"family": "kl", "w_barlow": 2.0}, key="c")
    with pytest.raises(SweepError, match=r"c\.family: 'vq' is not one of"):
        check_params(space, {"family": "vq"}, key="c")
    with pytest.raises(SweepError, match=r"c\.w_kl: 5\.0 lies outside"):
        check_params(space, {"family": "kl", "w_kl": 5.0}, key="c")


def test_train_config_for_needs_every_searched_parameter(data_dir):
    spec = make_spec(data_dir, {"regularizers": {"prototype": {"low": 0.1, "high": 10}, "barlow": {"low": 1.0, "high": 10}}})
    with pytest.raises(ValueError, match="params: missing 'w_barlow'"):
        train_config_for(spec, {"w_prototype": 1.0})


def test_regularizer_options_are_searched_like_training_keys(data_dir):
    tau, pairing = "rae.regularizer_options.simclr.tau", "rae.regularizer_options.barlow.pairing"
    spec = make_spec(data_dir, {"families": {"simclr": 1.0, "barlow": 1.0},
                                "params": {tau: {"low": 0.1, "high": 1.0}, pairing: {"choices": ["augmentation", "prototype"]}}})
    assert spec.space.params[tau] == Range(0.1, 1.0) and spec.space.params[pairing] == Choice(("augmentation", "prototype"))
    for p in sample(spec.space, 10):
        cfg = train_config_for(spec, p)
        assert cfg.rae.options == {"simclr": {"tau": p[tau]}, "barlow": {"pairing": p[pairing]}}
    for params, match in [
        ({tau: {"low": 0.0, "high": 1.0}}, rf"search.params.{tau}: value 0.0 is not a valid training setting"),
        ({pairing: {"choices": ["shuffle"]}}, rf"search.params.{pairing}: value 'shuffle' is not a valid"),
        ({pairing: {"low": 0, "high": 1}}, rf"search.params.{pairing}: a str setting has no range"),
        ({"rae.regularizer_options.simclr.temperature": [0.1]}, "simclr has no option temperature"),
        ({"rae.regularizer_options.simclr": [0.1]}, "expected rae.regularizer_options.<regularizer>.<option>"),
    ]:
        with pytest.raises(SweepError, match=match):
            make_spec(data_dir, {"families": {"simclr": 1.0, "none": {}}, "params": params})
