"""Critics: short training runs whose losses fall, storage with a content hash, the shipped Omniglot critics
(issue 11's bar), and the first critics (v1, 28 px) still loading under their old hash."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml

from evaluation.critic_training import (
    RECIPES,
    CriticsRecipe,
    check_reusable,
    cosine_logits,
    loss_curve,
    nt_xent,
    plateau,
    recipe_from_arg,
    rotation_classes,
    train_critics,
    train_proto,
    train_simclr,
    training_part,
    warmup_cosine,
)
from evaluation.critics import MANIFEST_FILE, CriticsError, load_critics, save_critics
from evaluation.heldout import quadrant_gradient_mass, random_support_accuracy
from evaluation.metrics import evaluation_tasks, per_sample_recognizability
from evaluation.networks import SimCLRCritic, build_critic, centre_of_ink
from evaluation.preprocess import preprocess

V1_HASH = "d7e1a6e7f439d714"  # the 28-px critics every result before issue 11 names


def _falls(losses: list[float], k: int = 8) -> bool:
    return sum(losses[-k:]) / k < 0.9 * sum(losses[:k]) / k


def test_proto_training_loss_falls(omniglot, one_thread):
    small = omniglot.subset(train_classes=60, seed=1)
    recipe = RECIPES["quick"].proto
    net, losses = train_proto(small.train_images, small.train_labels, recipe)
    assert len(losses) == recipe.steps and _falls(losses)
    assert not net.training
    e = net(torch.zeros(2, 1, 48, 48))
    assert e.shape == (2, 128) and torch.allclose(e.norm(dim=1), torch.ones(2), atol=1e-5)  # unit sphere


def test_cosine_margin_lowers_only_the_true_class_logit():
    emb = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    weight, target = torch.randn(5, 16), torch.randint(0, 5, (8,))
    plain = cosine_logits(emb, weight, target, scale=16.0)
    assert plain.abs().max() <= 16.0 + 1e-4  # cosines, scaled
    lowered = plain - cosine_logits(emb, weight, target, scale=16.0, margin=0.2)
    true = torch.nn.functional.one_hot(target, 5).bool()
    assert torch.allclose(lowered[true], torch.full((8,), 3.2)) and torch.all(lowered[~true] == 0)


def test_rotation_classes_turn_each_image_and_give_it_its_own_class():
    """Image i turned by k quarter turns is class label + k * C; k = 0 leaves it as it is."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 48, 48), dtype=torch.uint8)
    labels = torch.randint(0, 10, (64,))
    turned, target = rotation_classes(images, labels, 10, generator=g)
    k = (target - labels) // 10
    assert set(k.tolist()) == {0, 1, 2, 3} and torch.equal(target % 10, labels)
    for i in range(64):
        assert torch.equal(turned[i], torch.rot90(images[i], int(k[i]), dims=(0, 1)))


def test_proto_training_with_rotation_classes_loss_falls(omniglot, one_thread):
    from dataclasses import replace

    small = omniglot.subset(train_classes=60, seed=1)
    recipe = replace(RECIPES["quick"].proto, rotation_classes=True)
    net, losses = train_proto(small.train_images, small.train_labels, recipe)
    assert len(losses) == recipe.steps and _falls(losses)
    assert CriticsRecipe.from_dict(RECIPES["rot4"].to_dict()).proto.rotation_classes  # named, and round-trips


def test_simclr_training_loss_falls(omniglot, one_thread):
    recipe = RECIPES["quick"].simclr
    net, losses = train_simclr(omniglot.train_images[:2000], recipe)
    assert len(losses) == recipe.steps and _falls(losses)
    assert net.features(torch.zeros(2, 1, 48, 48)).shape == (2, 256)


def test_nt_xent_golden():
    # two orthogonal pairs, views identical: logits over the 3 others are [1/t, 0, 0] for every row
    z = torch.eye(2, 4)
    t = 0.5
    want = -torch.log(torch.exp(torch.tensor(1 / t)) / (torch.exp(torch.tensor(1 / t)) + 2))
    assert nt_xent(z, z.clone(), t).item() == pytest.approx(want.item(), rel=1e-6)


def test_schedule_curve_and_plateau():
    assert warmup_cosine(0, warmup=10, total=110) == pytest.approx(0.1)
    assert warmup_cosine(10, warmup=10, total=110) == pytest.approx(1.0)
    assert warmup_cosine(60, warmup=10, total=110) == pytest.approx(0.5)
    assert warmup_cosine(110, warmup=10, total=110) == pytest.approx(0.0, abs=1e-12)
    assert loss_curve([1.0, 3.0, 5.0, 7.0], points=2) == [2.0, 6.0]
    flat = plateau([5.0] * 50 + [2.0] * 100)
    assert flat["relative_change"] == 0.0 and flat["last_tenth_mean"] == 2.0
    assert plateau(list(range(100, 0, -1)))["relative_change"] > 0.1  # still falling


def test_training_part_excludes_named_classes(omniglot):
    drop = omniglot.train_classes[:3]
    images, labels, exemplars, kept = training_part(omniglot, drop)
    assert len(kept) == len(omniglot.train_classes) - 3 and not set(drop) & set(kept)
    assert len(images) == len(omniglot.train_images) - 60 and int(labels.max()) == len(kept) - 1
    assert torch.equal(exemplars[0], omniglot.train_exemplars[3])
    with pytest.raises(ValueError, match="not training classes"):
        training_part(omniglot, ("Nowhere/character99",))


def test_recipe_round_trip_and_unknown_keys():
    r = RECIPES["default"]
    assert CriticsRecipe.from_dict(json.loads(json.dumps(r.to_dict()))) == r  # through JSON: lists -> tuples
    assert r.with_seed(1).proto.seed == 1 and r.with_seed(1).simclr.seed == 1
    with pytest.raises(ValueError, match="'proto'.*episodez"):
        CriticsRecipe.from_dict({"proto": {"episodez": 3}})
    with pytest.raises(ValueError, match="'simclr.views'.*blur"):
        CriticsRecipe.from_dict({"simclr": {"views": {"blur": 1}}})


def test_recipe_from_a_yaml_file_replaces_only_the_fields_it_names(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("proto: {steps: 7000, label_smoothing: 0.0, views: {shear: 4}}\n")
    r = recipe_from_arg(str(f))
    d = RECIPES["default"]
    assert (r.proto.steps, r.proto.label_smoothing, r.proto.views.shear) == (7000, 0.0, 4)
    assert r.proto.lr == d.proto.lr and r.proto.views.degrees == d.proto.views.degrees and r.simclr == d.simclr
    assert recipe_from_arg("quick") == RECIPES["quick"]
    with pytest.raises(ValueError, match="neither a named recipe"):
        recipe_from_arg("nonesuch")
    f.write_text("proto: {stepz: 3}\n")
    with pytest.raises(ValueError, match="'proto'.*stepz"):
        recipe_from_arg(str(f))


def test_quadrant_gradient_mass_sees_a_one_sided_critic():
    x = (torch.rand(64, 1, 48, 48) > 0.8).float()
    even = quadrant_gradient_mass(lambda t: t.flatten(1), x)
    assert even["gradient_per_ink_max_over_min"] < 1.2
    left = quadrant_gradient_mass(lambda t: t[..., :24].flatten(1), x)  # blind to the right half
    assert left["gradient"][1] == 0 and left["gradient"][3] == 0
    assert left["gradient_per_ink_max_over_min"] is None


def test_random_support_accuracy_on_separable_embeddings():
    labels = torch.arange(20).repeat_interleave(5)
    emb = torch.nn.functional.one_hot(labels, 20).float() + 0.01 * torch.randn(100, 20)
    assert random_support_accuracy(emb, labels, evaluation_tasks(20, seed=0)) == 1.0
    assert random_support_accuracy(torch.randn(100, 20), labels, evaluation_tasks(20, seed=0)) < 0.3


def test_shipped_omniglot_critics_meet_the_bar(critics, omniglot):
    """Issue 11: 48 px, even receptive field, held-out 20-way 1-shot >= 97% (exemplar as support) reproducible from
    the weights, SimCLR loss flat at the end."""
    m = critics.manifest
    assert m["dataset"] == "omniglot" and m["threshold"] == 0.3 and m["schema_version"] == 2
    assert critics.simclr.input_size == 48 and critics.proto.input_size == 48
    assert m["data_fingerprint"] == omniglot.fingerprint()
    assert m["heldout"]["recognizability_20way_1shot"] >= 0.97
    assert m["heldout"]["test_classes"] == 150
    # the manifest's held-out scores are reproducible from the stored weights
    tasks = evaluation_tasks(150, seed=44)
    e = critics.embeddings(omniglot.test_images)
    acc = per_sample_recognizability(e, omniglot.test_labels, critics.embeddings(omniglot.test_exemplars),
                                     tasks).mean().item()
    assert acc == pytest.approx(m["heldout"]["recognizability_20way_1shot"], abs=1e-6)
    assert random_support_accuracy(e, omniglot.test_labels, tasks) == pytest.approx(
        m["heldout"]["recognizability_20way_1shot_random_support"], abs=1e-6)
    for net in ("proto", "simclr"):
        q = m["heldout"]["quadrant_gradient_mass"][net]
        assert q["gradient_per_ink_max_over_min"] < 1.25, (net, q)
    assert abs(m["training"]["simclr_plateau"]["relative_change"]) < 0.01
    assert len(m["training"]["simclr_loss_curve"]) == 100
    lake = set(m["training"]["excluded_classes"])
    assert len(lake) == 46 and lake <= set(omniglot.train_classes)


def test_shipped_quickdraw_critics_load_and_reproduce_their_scores(quickdraw):
    """Issue 11: critics for the project's QuickDraw set ship, so a QuickDraw sweep runs from a fresh clone; their
    held-out scores (69 test categories never seen in training) are reproducible from the weights."""
    c = load_critics("quickdraw")
    m = c.manifest
    assert m["dataset"] == "quickdraw" and m["threshold"] == 0.3 and m["data_fingerprint"] == quickdraw.fingerprint()
    assert c.simclr.input_size == 48 and c.proto.input_size == 48
    assert m["heldout"]["test_classes"] == len(quickdraw.test_exemplars) == 69
    assert m["training"]["train_classes"] == len(quickdraw.train_classes) == 276
    tasks = evaluation_tasks(69, seed=44)
    acc = per_sample_recognizability(c.embeddings(quickdraw.test_images), quickdraw.test_labels,
                                     c.embeddings(quickdraw.test_exemplars), tasks).mean().item()
    assert acc == pytest.approx(m["heldout"]["recognizability_20way_1shot"], abs=1e-6)
    assert acc > 5 * (1 / 20)  # far above chance, far below Omniglot's (see the expected failure below)


@pytest.mark.xfail(strict=True, reason="issue 11's >= 90% on QuickDraw is missed: measured 45.8% with the Omniglot "
                   "recipe on whole Quick, Draw! categories (100 drawings each); see docs/critics.md")
def test_shipped_quickdraw_recognizability_critic_reaches_90_percent():
    assert load_critics("quickdraw").manifest["heldout"]["recognizability_20way_1shot"] >= 0.90


def test_first_critics_still_load_under_their_hash(omniglot):
    old = load_critics("omniglot-v1")
    assert old.hash == V1_HASH and old.manifest["schema_version"] == 1 and old.proto.input_size == 28
    x = preprocess(omniglot.test_exemplars[:4], size=28)
    assert old.proto(x).shape == (4, 128)


def test_quickdraw_v2_critics_still_load_and_share_the_shipped_originality_critic():
    """The QuickDraw critics shipped until 2026-12-05 (v2 recipe) scored the results made before then."""
    shipped, v2 = load_critics("quickdraw"), load_critics("quickdraw-v2")
    assert v2.hash == "5c3d981b36edf873" != shipped.hash
    assert v2.manifest["recipe"]["proto"]["label_smoothing"] > 0 == shipped.manifest["recipe"]["proto"]["label_smoothing"]
    assert shipped.manifest["training"]["simclr_reused_from"] == v2.hash
    assert shipped.normalizer == pytest.approx(v2.normalizer, rel=1e-6)  # recomputed with the same SimCLR critic


def test_earlier_critics_still_load_and_share_networks_with_the_shipped_ones(critics):
    """v2 scored every result committed before 2026-12-04, v3 those until 2026-12-07 03:30 and v4 those until v5
    shipped the same day; v3 kept v2's originality critic, v4 and v5 keep v3's recognizability critic and centre
    the ink for originality, v5's originality critic trained in batches of 256 pairs (v4: 128)."""
    v2, v3, v4 = (load_critics(f"omniglot-v{n}") for n in (2, 3, 4))
    assert (v2.hash, v3.hash, v4.hash) == ("ab1f54bfae1387e0", "45dcdcf873be7bd7", "cbf87decf121d94c")
    assert critics.hash not in (v2.hash, v3.hash, v4.hash)
    assert v3.manifest["training"]["simclr_reused_from"] == v2.hash
    assert v4.manifest["training"]["proto_reused_from"] == v3.hash
    assert critics.manifest["training"]["proto_reused_from"] == v4.hash
    for older, newer in ((v2.simclr, v3.simclr), (v3.proto, v4.proto), (v4.proto, critics.proto)):
        for a, b in zip(older.state_dict().values(), newer.state_dict().values()):
            assert torch.equal(a, b)
    assert critics.simclr.encoder.centre_ink and v4.simclr.encoder.centre_ink and not v3.simclr.encoder.centre_ink
    assert not critics.proto.encoder.centre_ink
    batches = [c.manifest["recipe"]["simclr"]["batch_size"] for c in (v4, critics)]
    assert batches == [RECIPES["v4"].simclr.batch_size, RECIPES["default"].simclr.batch_size] == [128, 256]


def test_save_load_round_trip_and_tampering(critics, tmp_path):
    out = save_critics(critics, tmp_path / "c")
    again = load_critics(out)
    assert again.hash == critics.hash
    x = torch.rand(3, 48, 48)
    torch.testing.assert_close(again.features(x), critics.features(x))
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    manifest["originality"]["normalizer"] *= 1.01  # a different unit of originality: must not pass silently
    (out / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(CriticsError, match="do not match"):
        load_critics(out)


def test_load_critics_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no critics at 'klingon'"):
        load_critics("klingon")
    shutil.rmtree(tmp_path, ignore_errors=True)
    (tmp_path / "half").mkdir(parents=True)
    with pytest.raises(CriticsError, match="missing"):
        load_critics(tmp_path / "half")


def test_critics_train_for_a_quickdraw_fs_file(tmp_path, omniglot, one_thread, capsys):
    """`critics train --dataset qdfs` on a small file in the paper's format (all_qd_fs_shuffled.npz: data
    (n_cls, n, 48, 48) and prototype (n_cls, n_proto, 48, 48), 0..255, ink high): 550 training classes and 20 test
    classes, the drawings taken from real Omniglot classes (QuickDraw-FS itself is not public)."""
    import numpy as np

    from search.cli import main

    order = torch.argsort(omniglot.train_labels, stable=True)
    drawings = omniglot.train_images[order].view(-1, 20, 48, 48)[:570]  # (570, 20, 48, 48)
    path = tmp_path / "data" / "quick_draw" / "all_qd_fs_shuffled.npz"
    path.parent.mkdir(parents=True)
    np.savez(path, data=drawings[:, 1:4].float().numpy(), prototype=drawings[:, :1].float().numpy())
    out = tmp_path / "critics"
    assert main(["critics", "train", "--dataset", "qdfs", "--data-dir", str(tmp_path / "data"), "--out", str(out),
                 "--recipe", "quick", "--threads", "1"]) == 0
    c = load_critics(out)
    m = c.manifest
    assert m["dataset"] == "qdfs" and m["heldout"]["test_classes"] == 20 and m["training"]["train_classes"] == 550
    assert m["training"]["excluded_classes"] == []
    assert 0.0 <= m["heldout"]["recognizability_20way_1shot"] <= 1.0
    assert f"critics {c.hash}" in capsys.readouterr().out


# ---- placement: the originality critic compares shapes, not where on the canvas they sit (v4) ----

def _t_shape(top: int, left: int) -> torch.Tensor:
    x = torch.zeros(1, 48, 48)
    x[0, top, left : left + 9] = 1.0  # the bar of a T
    x[0, top : top + 7, left + 4] = 1.0  # its stem
    return x


def test_centre_of_ink_puts_the_same_drawing_in_the_same_place_wherever_it_was_drawn():
    x = torch.stack([_t_shape(2, 3), _t_shape(20, 30), _t_shape(40, 12)])  # (3, 1, 48, 48)
    y = centre_of_ink(x)
    assert torch.equal(y[0], y[1]) and torch.equal(y[1], y[2])
    assert torch.equal(y.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3))) and set(y.unique().tolist()) == {0.0, 1.0}
    rows, cols = torch.nonzero(y[0, 0], as_tuple=True)
    assert abs(rows.float().mean() - 23.5) <= 0.5 and abs(cols.float().mean() - 23.5) <= 0.5
    blank = torch.zeros(1, 1, 48, 48)
    assert torch.equal(centre_of_ink(blank), blank)


def test_centre_of_ink_never_pushes_ink_past_the_border():
    x = torch.zeros(1, 1, 48, 48)
    x[0, 0, :, 0:2] = 1.0  # a full-height bar at the left edge...
    x[0, 0, 0, :] = 1.0  # ...with a full-width bar on top: its centre of mass is off centre, yet it cannot move
    assert torch.equal(centre_of_ink(x), x)
    x = torch.zeros(1, 1, 48, 48)
    x[0, 0, 0:40, 0:3] = 1.0
    x[0, 0, 0, 0:40] = 1.0  # centre of mass far up-left: moved only as far as the canvas allows
    y = centre_of_ink(x)
    assert y.sum() == x.sum()
    rows, cols = torch.nonzero(y[0, 0], as_tuple=True)
    assert rows.max() == 47 and cols.max() == 47  # as near the centre as it goes: pressed to the far edges


def test_a_centring_critic_records_it_and_ignores_whole_pixel_moves():
    torch.manual_seed(0)
    net = SimCLRCritic(centre_ink=True).eval()
    again = build_critic(SimCLRCritic, net.arch())
    assert net.arch()["centre_ink"] is True and again.encoder.centre_ink
    assert "centre_ink" not in SimCLRCritic().arch()  # critics before v4 keep their arch dict, hence their hash
    assert not build_critic(SimCLRCritic, SimCLRCritic().arch()).encoder.centre_ink
    x = torch.stack([_t_shape(2, 3), _t_shape(35, 30)])
    with torch.no_grad():
        f = net.features(x)
        torch.testing.assert_close(f[0], f[1])
        plain = SimCLRCritic().eval()
        plain.load_state_dict(net.state_dict())
        assert not torch.allclose(plain.features(x)[0], plain.features(x)[1], atol=1e-4)


def test_a_critic_is_reused_only_under_the_recipe_it_was_trained_with(critics):
    v3 = load_critics("omniglot-v3")
    exclude = critics.manifest["training"]["excluded_classes"]
    check_reusable(v3, RECIPES["default"], "proto", "omniglot", exclude)  # v4 and v5 reuse v3's recognizability critic
    check_reusable(v3, RECIPES["v3"], "simclr", "omniglot", exclude)
    with pytest.raises(ValueError, match="the simclr recipe differ"):  # v3's originality critic did not centre
        check_reusable(v3, RECIPES["default"], "simclr", "omniglot", exclude)
    v4 = load_critics("omniglot-v4")
    check_reusable(v4, RECIPES["v4"], "simclr", "omniglot", exclude)
    with pytest.raises(ValueError, match="the simclr recipe differ"):  # v4's originality critic: batches of 128
        check_reusable(v4, RECIPES["default"], "simclr", "omniglot", exclude)
    with pytest.raises(ValueError, match="the proto recipe, the excluded classes differ"):
        check_reusable(v3, RECIPES["quick"], "proto", "omniglot", ())
    with pytest.raises(ValueError, match="the dataset differ"):
        check_reusable(critics, RECIPES["default"], "proto", "quickdraw", exclude)


def test_training_with_a_reused_critic_trains_only_the_other(omniglot):
    recipe = RECIPES["quick"]
    quick = train_critics(omniglot, recipe)
    again = train_critics(omniglot, recipe.with_seed(0), proto_from=quick)
    t = again.manifest["training"]
    assert t["proto_reused_from"] == quick.hash and "simclr_reused_from" not in t
    assert t["proto_loss_curve"] == quick.manifest["training"]["proto_loss_curve"]
    for a, b in zip(again.proto.state_dict().values(), quick.proto.state_dict().values()):
        assert torch.equal(a, b)
    assert again.manifest["heldout"]["recognizability_20way_1shot"] == quick.manifest["heldout"][
        "recognizability_20way_1shot"]


def test_critics_train_refuses_a_critic_it_cannot_reuse_before_training(data_dir, capsys, tmp_path):
    from search.cli import main

    rc = main(["critics", "train", "--dataset", "omniglot", "--data-dir", str(data_dir), "--recipe", "quick",
               "--reuse-proto", "omniglot", "--out", str(tmp_path / "c")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "cannot reuse the proto critic" in err and "the proto recipe" in err and "simclr step" not in err
    assert not (tmp_path / "c").exists()


def test_critics_train_keeps_the_seeds_a_recipe_file_sets_unless_seed_is_given(data_dir, tmp_path, one_thread):
    """A recipe file may seed the two critics apart (a third originality critic beside a reused recognizability
    critic); `--seed` left out must not reset them to 0, which it did until 2026-12-07."""
    from search.cli import main

    small = {"steps": 30, "batch_size": 64, "warmup": 5, "widths": [16, 16, 32, 32]}
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"proto": small, "simclr": {**small, "seed": 3}}))
    out = tmp_path / "c"
    assert main(["critics", "train", "--dataset", "omniglot", "--data-dir", str(data_dir), "--recipe", str(recipe),
                 "--threads", "1", "--out", str(out)]) == 0
    stored = load_critics(out).manifest["recipe"]
    assert (stored["proto"]["seed"], stored["simclr"]["seed"]) == (0, 3)
    assert stored["simclr"]["steps"] == 30 and stored["simclr"]["batch_size"] == 64
