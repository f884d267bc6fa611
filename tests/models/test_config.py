"""Config validation: every mistake names its key; presets apply; nothing is silently corrected."""
from __future__ import annotations

import pytest

from models.config import DEFAULT_LATENT, PRESETS, ConfigError, build_config, config_from_dict, load_config


def test_defaults_are_the_papers_settings():
    cfg = build_config({})
    assert (cfg.rae.epochs, cfg.ldm.epochs, cfg.rae.batch_size, cfg.ldm.batch_size) == (100, 100, 128, 128)
    assert cfg.rae.lr == 1e-4 and cfg.ldm.drop_prob == 0.1 and cfg.sample.sampler == "ddpm"
    assert cfg.latent_size == DEFAULT_LATENT["omniglot"] == 64
    assert build_config({"data": {"dataset": "quickdraw"}}).latent_size == 128


def test_preset_then_overrides():
    cfg = build_config({"preset": "quick", "rae": {"epochs": 2}})
    assert cfg.rae.epochs == 2  # the file wins over the preset
    assert cfg.ldm.epochs == PRESETS["quick"]["ldm"]["epochs"]
    assert cfg.data.train_classes == PRESETS["quick"]["data"]["train_classes"]


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"rae": {"epochs": 0}}, "rae.epochs"),
        ({"rae": {"epoch": 3}}, "rae.epoch"),
        ({"rae": {"regularizers": {"protoype": 1.0}}}, "rae.regularizers.protoype"),
        ({"rae": {"regularizers": {"kl": -1.0}}}, "rae.regularizers.kl"),
        ({"rae": {"regularizers": {"kl": float("nan")}}}, "rae.regularizers.kl"),
        ({"rae": {"lr": "fast"}}, "rae.lr"),
        ({"rae": {"batch_size": 12.5}}, "rae.batch_size"),
        ({"rae": {"precision": "fp16"}}, "rae.precision"),
        ({"data": {"dataset": "mnist"}}, "data.dataset"),
        ({"sample": {"sampler": "euler"}}, "sample.sampler"),
        ({"ldm": {"drop_prob": 1.0}}, "ldm.drop_prob"),
        ({"ldm": []}, "ldm"),
        ({"preset": "huge"}, "preset"),
        ({"seed": True}, "seed"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_values_name_their_key(raw, key):
    with pytest.raises(ConfigError) as err:
        build_config(raw)
    assert str(err.value).startswith(key + ":"), str(err.value)


def test_int_is_accepted_for_float_and_saved_config_round_trips():
    cfg = build_config({"preset": "quick", "rae": {"lr": 1, "regularizers": {"barlow": 10, "prototype": 0}}})
    assert cfg.rae.lr == 1.0 and isinstance(cfg.rae.lr, float)
    assert cfg.rae.active == {"barlow": 10.0}  # weight 0 means not built
    assert config_from_dict(cfg.to_dict()) == cfg


def test_names_are_the_registries():
    import models.config
    from models.data import load
    from models.diffusion import samplers
    from models.regularizers import REGISTRY

    for name in REGISTRY:  # every registered regularizer is a valid setting, and the error lists exactly them
        assert build_config({"rae": {"regularizers": {name: 1.0}}}).rae.active == {name: 1.0}
    with pytest.raises(ConfigError, match=f"choose from {', '.join(REGISTRY)}$"):
        build_config({"rae": {"regularizers": {"vae": 1.0}}})
    assert models.config.SAMPLERS == tuple(samplers.SAMPLERS) and models.config.DATASETS is load.DATASETS
    assert not hasattr(models.config, "REGULARIZERS")  # no second list to keep in step


def test_validation_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, models.config as c; c.build_config({'preset': 'quick', 'rae': {'regularizers': {'barlow': 1},"
            " 'regularizer_options': {'kl': {}}}}); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("options, key", [
    ({"barlw": {"lam": 0.1}}, "rae.regularizer_options.barlw"),
    ({"barlow": {"lambda": 0.1}}, "rae.regularizer_options.barlow.lambda"),
    ({"barlow": {"lam": -0.1}}, "rae.regularizer_options.barlow.lam"),
    ({"simclr": {"tau": 0}}, "rae.regularizer_options.simclr.tau"),
    ({"simclr": {"pairing": "shuffle"}}, "rae.regularizer_options.simclr.pairing"),
    ({"vq": {"n_codes": 64.0}}, "rae.regularizer_options.vq.n_codes"),
    ({"prototype": {"mask_same_class": 1}}, "rae.regularizer_options.prototype.mask_same_class"),
    ({"vq": 16}, "rae.regularizer_options.vq"),
])
def test_bad_regularizer_options_name_their_key(options, key):
    with pytest.raises(ConfigError) as err:
        build_config({"rae": {"regularizer_options": options}})
    assert str(err.value).startswith(key + ":"), str(err.value)


def test_regularizer_options_are_set_checked_and_saved():
    cfg = build_config({"rae": {"regularizers": {"simclr": 1.0},
                                "regularizer_options": {"simclr": {"tau": 1, "pairing": "prototype"}, "vq": {}}}})
    assert cfg.rae.options == {"simclr": {"tau": 1, "pairing": "prototype"}, "vq": {}}
    assert config_from_dict(cfg.to_dict()) == cfg
    # the views are made once a batch: two view-based regularizers with different pairings are refused
    with pytest.raises(ConfigError, match=r"^rae.regularizer_options.simclr.pairing: .*barlow: augmentation"):
        build_config({"rae": {"regularizers": {"simclr": 1.0, "barlow": 1.0},
                              "regularizer_options": {"simclr": {"pairing": "prototype"}}}})


def test_old_mask_same_class_field_still_works_and_old_configs_compare_equal():
    old = build_config({"rae": {"mask_same_class": True}})
    assert old.rae.options == {"prototype": {"mask_same_class": True}}
    with pytest.raises(ConfigError, match="^rae.regularizer_options.prototype.mask_same_class: also set"):
        build_config({"rae": {"mask_same_class": True, "regularizer_options": {"prototype": {"mask_same_class": True}}}})
    # a config saved before regularizer_options existed reads back equal to today's default
    saved = build_config({"preset": "quick"}).to_dict()
    del saved["rae"]["regularizer_options"]
    assert config_from_dict(saved) == build_config({"preset": "quick"})


def test_load_config_file_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rae: {epochs: [\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("preset: quick\nrae:\n  regularizers: {barlw: 1}\n")
    with pytest.raises(ConfigError, match=r"typo.yaml: rae.regularizers.barlw: unknown regularizer"):
        load_config(typo)
    ok = tmp_path / "ok.yaml"
    ok.write_text("preset: quick\n")
    assert load_config(ok, {"data.data_dir": "/somewhere"}).data.data_dir == "/somewhere"
