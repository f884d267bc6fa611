"""An 8th regularizer added the way a contributor adds one: one module file + one registry line. With nothing
else changed it validates (options included), trains, is searchable as a weight, a family and by its option, and
gets its own colour in the figures."""
from __future__ import annotations

import sys
import textwrap

import optuna
import pytest

from models import regularizers
from models.config import ConfigError, build_config

MODULE = "toy_center_regularizer"
TOY = textwrap.dedent('''
    """Toy regularizer: pulls the batch mean of the latents to the origin."""
    from torch import Tensor

    from models.regularizers.base import Regularizer, Step
    from models.regularizers.options import Option


    class Center(Regularizer):
        name = "center"
        options = {"scale": Option(1.0, gt=0, doc="multiplies the loss"),
                   "squared": Option(True, doc="squared norm of the mean (else the norm)")}

        def __init__(self, *, scale: float, squared: bool):
            super().__init__()
            self.scale, self.squared = scale, squared

        def loss(self, step: Step) -> Tensor:
            norm2 = step.z.mean(0).pow(2).sum()  # (B, L) -> scalar
            return self.scale * (norm2 if self.squared else norm2.sqrt())
''')


@pytest.fixture
def center(tmp_path, monkeypatch):
    """The contributor's two changes, made at run time: the module file and its registry line."""
    (tmp_path / f"{MODULE}.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(regularizers.REGISTRY, "center", f"{MODULE}:Center")
    yield "center"
    sys.modules.pop(MODULE, None)


def test_it_validates_with_its_options(center):
    cfg = build_config({"rae": {"regularizers": {"center": 0.5}, "regularizer_options": {"center": {"scale": 2}}}})
    assert cfg.rae.active == {"center": 0.5} and cfg.rae.options == {"center": {"scale": 2}}
    for options, key in (({"scale": 0.0}, "rae.regularizer_options.center.scale"),
                         ({"squared": "yes"}, "rae.regularizer_options.center.squared"),
                         ({"scael": 1.0}, "rae.regularizer_options.center.scael")):
        with pytest.raises(ConfigError) as err:
            build_config({"rae": {"regularizers": {"center": 1.0}, "regularizer_options": {"center": options}}})
        assert str(err.value).startswith(key + ":"), str(err.value)


def test_it_trains(center, omniglot, tmp_path):
    from models.train import subset_for, train_rae

    cfg = build_config({"preset": "quick", "data": {"train_classes": 12, "test_classes": 4},
                        "rae": {"epochs": 2, "batch_size": 32, "regularizers": {"center": 1.0},
                                "regularizer_options": {"center": {"scale": 3.0, "squared": False}}}})
    ae, state = train_rae(cfg, subset_for(cfg, omniglot), tmp_path, progress=False)
    reg = ae.regularizers["center"]
    assert (reg.scale, reg.squared) == (3.0, False)  # the config's options reached the module
    first, last = state["curve"]
    for row in (first, last):  # its loss is computed and weighted into the total
        assert row["center"] > 0 and row["total"] == pytest.approx(row["rec"] + 1.0 * row["center"], rel=1e-5)
    assert last["test_rec"] < first["test_rec"]


def _sample(space, n):
    from search.space import suggest

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    draws = []
    for _ in range(n):
        trial = study.ask()
        draws.append(suggest(trial, space))
        study.tell(trial, 0.0)
    return draws


def test_it_is_searchable_as_a_family_a_weight_and_by_its_option(center, data_dir):
    from search.space import train_config_for
    from search.spec import SweepError, sweep_from_dict

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    option = "rae.regularizer_options.center.scale"

    def spec(search):
        return sweep_from_dict({"name": "s", "train": {"preset": "quick", "data": {"data_dir": str(data_dir)}},
                                "search": search, "n_trials": 10})

    family = spec({"families": {"none": {}, "center": {"low": 0.1, "high": 10.0}, "kl": 1.0},
                   "params": {option: {"low": 0.5, "high": 4.0}}})
    draws = _sample(family.space, 20)
    centers = [p for p in draws if p["family"] == "center"]
    assert centers and all(0.1 <= p["w_center"] <= 10 and 0.5 <= p[option] <= 4 for p in centers)
    cfg = train_config_for(family, centers[0])
    assert cfg.rae.active == {"center": centers[0]["w_center"]}
    assert cfg.rae.options == {"center": {"scale": centers[0][option]}}

    weights = spec({"regularizers": {"center": {"choices": [0.1, 1.0]}, "prototype": 1.0},
                    "params": {option: {"choices": [1.0, 2.0]}}})
    p = _sample(weights.space, 1)[0]
    assert set(p) == {"w_center", option}
    assert train_config_for(weights, p).rae.active == {"center": p["w_center"], "prototype": 1.0}

    with pytest.raises(SweepError, match=f"search.params.{option}: value 0.0 is not a valid training setting"):
        spec({"families": {"center": 1.0, "none": {}}, "params": {option: {"choices": [0.0, 1.0]}}})
    with pytest.raises(SweepError, match="center has no option size"):
        spec({"families": {"center": 1.0, "none": {}}, "params": {"rae.regularizer_options.center.size": [1, 2]}})


def test_it_gets_its_own_colour_in_the_figures(center):
    from evaluation.figures import setting_colours

    colours = setting_colours(["none", *regularizers.NAMES])
    assert list(colours) == ["none", *regularizers.NAMES] and colours["center"] not in (
        [c for s, c in colours.items() if s != "center"])
