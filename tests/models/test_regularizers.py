"""Latent regularizers (models/regularizers): each trains, sends gradients to the encoder, and computes SPEC
section 2's formula (checked against independent constructions)."""
from __future__ import annotations

import inspect
import math

import pytest
import torch
import torch.nn.functional as F

from models import regularizers
from models.rae import RegularizedAE
from models.regularizers.barlow import barlow_twins_loss
from models.regularizers.base import MODEL_ARGS
from models.regularizers.kl import kl_to_standard_normal
from models.regularizers.prototype import squared_distances
from models.regularizers.simclr import nt_xent

NAMES = list(regularizers.NAMES)  # every registered regularizer


def train(data, weights, *, steps, width=32, latent=32, batch_size=32, lr=2e-3, seed=0):
    """Adam on random batches of the real drawings; returns the model and the per-step losses."""
    torch.manual_seed(seed)
    model = RegularizedAE(latent_size=latent, width=width, weights=weights, n_classes=48).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    history = []
    for _ in range(steps):
        idx = torch.randint(0, len(data.x), (batch_size,), generator=g)
        out = model.loss(data.x[idx], data.labels[idx], data.exemplars[data.labels[idx]], generator=g)
        opt.zero_grad(set_to_none=True)
        out["total"].backward()
        opt.step()
        model.after_step()
        history.append({k: v.item() for k, v in out.items()})
    return model, history


@pytest.fixture(scope="module")
def trained(drawings):
    """setting -> (model, history) after 80 steps at width 32, trained once per module and shared by the tests."""
    cache = {}

    def get(setting: str):
        if setting not in cache:
            weights = {"none": {}, "kl100": {"kl": 100.0}}.get(setting, {setting: 1.0})
            cache[setting] = train(drawings, weights, steps=80)
        return cache[setting]
    return get


@pytest.mark.parametrize("name", NAMES)
def test_loss_is_finite_and_its_gradient_reaches_the_first_conv(drawings, name, batch):
    torch.manual_seed(0)
    model = RegularizedAE(latent_size=64, weights={name: 1.0}, n_classes=48)
    x, labels, exemplars = batch(drawings, 16)
    out = model.loss(x, labels, exemplars, generator=torch.Generator().manual_seed(0))
    assert math.isfinite(out[name].item())
    first_conv = model.encoder.convs[0].weight
    (grad,) = torch.autograd.grad(out[name], first_conv)  # the regularizer's own term, without the reconstruction
    assert bool(torch.isfinite(grad).all()) and grad.abs().sum().item() > 0


@pytest.mark.parametrize("name", ["none", *NAMES])
def test_training_lowers_the_reconstruction_loss(trained, name):
    _, history = trained(name)
    first = sum(h["rec"] for h in history[:10]) / 10
    last = sum(h["rec"] for h in history[-10:]) / 10
    assert all(math.isfinite(h["total"]) for h in history)
    assert last < 0.6 * first, (first, last)


@pytest.mark.slow
@pytest.mark.parametrize("weights", [{}, *({n: 1.0} for n in NAMES), {"prototype": 1.0, "barlow": 10.0}],
                         ids=lambda w: "+".join(w) or "none")
def test_full_size_model_learns_in_200_steps(drawings, weights):
    _, history = train(drawings, weights, steps=200, width=128, latent=128, lr=1e-3)
    first = sum(h["rec"] for h in history[:10]) / 10
    last = sum(h["rec"] for h in history[-10:]) / 10
    mean_image_sse = (drawings.x - drawings.x.mean(0)).pow(2).sum((1, 2, 3)).mean().item()
    assert last < 0.5 * first, (first, last)
    assert last < mean_image_sse, (last, mean_image_sse)  # better than the best constant image


def test_vq_codebook_uses_several_codes(trained, drawings):
    model, _ = trained("vq")
    with torch.no_grad():
        codes = model.eval().regularizers["vq"].indices(model.encoder(drawings.x)[1])  # (N, L / 4)
    assert codes.unique().numel() > 1


def test_large_kl_weight_pulls_latents_toward_unit_variance(trained, drawings):
    plain, kl = trained("none")[0].eval(), trained("kl100")[0].eval()
    with torch.no_grad():
        var_plain = plain.encode(drawings.x).var(0)  # (L,) per-dim variance over the images
        var_kl = kl.encode(drawings.x, generator=torch.Generator().manual_seed(0)).var(0)
    # mean over dims of |log var_d|: 0 when every dim has unit variance, blind to a mere average of 1
    off_plain, off_kl = var_plain.log().abs().mean().item(), var_kl.log().abs().mean().item()
    assert off_kl < 0.15, off_kl
    assert off_kl < 0.5 * off_plain, (off_kl, off_plain)


# ---- the formulas, against independent constructions ----

def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros(8, 5), torch.ones(8, 5))
    expected = torch.distributions.kl_divergence(q, p).sum(1).mean()
    torch.testing.assert_close(kl_to_standard_normal(mu, logvar), expected)


def test_vq_quantizes_to_the_nearest_code_with_straight_through_gradient():
    model = RegularizedAE(latent_size=16, weights={"vq": 1.0})
    vq = model.regularizers["vq"]
    z = torch.randn(6, 16, requires_grad=True)
    zq, loss = vq.bottleneck(torch.empty(0), z)
    words = z.detach().view(-1, 1, 4)
    nearest = (words - vq.codebook.detach().unsqueeze(0)).pow(2).sum(-1).argmin(1)   # brute force
    torch.testing.assert_close(zq.detach(), vq.codebook.detach()[nearest].view(6, 16))
    mse = (z.detach() - zq.detach()).pow(2).mean()
    torch.testing.assert_close(loss.detach(), (1 + 2.5) * mse)  # mse(sg zq, z) + 2.5 mse(zq, sg z), same value
    zq.sum().backward()
    assert torch.equal(z.grad, torch.ones_like(z))  # straight-through: d zq / d z = identity


def test_nt_xent_matches_the_definition():
    g = torch.Generator().manual_seed(0)
    z1, z2, tau = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g), 0.5
    r = torch.cat([z1, z2])
    b = z1.shape[0]
    total = 0.0
    for i in range(2 * b):  # -log exp(cos(i, pos)/tau) / sum_{k != i} exp(cos(i, k)/tau)
        cos = [F.cosine_similarity(r[i], r[k], dim=0) / tau for k in range(2 * b)]
        pos = (i + b) % (2 * b)
        total += -(cos[pos] - torch.logsumexp(torch.stack([c for k, c in enumerate(cos) if k != i]), 0))
    torch.testing.assert_close(nt_xent(z1, z2, tau), total / (2 * b))


def test_barlow_matches_the_definition():
    g = torch.Generator().manual_seed(0)
    a, b, lam = torch.randn(7, 4, generator=g), torch.randn(7, 4, generator=g), 0.005
    expected = 0.0
    for i in range(4):
        for j in range(4):
            c = sum(a[n, i] * b[n, j] for n in range(7)) / 7
            expected += (c - 1) ** 2 if i == j else lam * c ** 2
    torch.testing.assert_close(barlow_twins_loss(a, b, lam), expected)


def test_squared_distances_match_cdist():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(9, 6, generator=g), torch.randn(5, 6, generator=g)
    torch.testing.assert_close(squared_distances(a, b), torch.cdist(a, b) ** 2, atol=1e-4, rtol=1e-5)


def test_prototype_mask_removes_same_class_negatives(drawings):
    x, labels, exemplars = drawings.x[:32], drawings.labels[:32], drawings.exemplars[drawings.labels[:32]]
    losses = {}
    for mask in (False, True):
        torch.manual_seed(0)
        model = RegularizedAE(latent_size=64, weights={"prototype": 1.0}, regularizer_options={"mask_same_class": mask})
        losses[mask] = model.loss(x, labels, exemplars)["prototype"].item()
    assert labels.unique().numel() < 32      # batch has same-class pairs (the first 32 drawings: 4 classes)
    assert losses[True] < losses[False]      # fewer negatives in every row's softmax
    distinct = drawings.labels[::10][:32]    # one drawing per class: nothing to mask, identical losses
    xd, ed = drawings.x[::10][:32], drawings.exemplars[distinct]
    same = []
    for mask in (False, True):
        torch.manual_seed(0)
        model = RegularizedAE(latent_size=64, weights={"prototype": 1.0}, regularizer_options={"mask_same_class": mask})
        same.append(model.loss(xd, distinct, ed)["prototype"].item())
    assert same[0] == pytest.approx(same[1], rel=1e-6)


def test_simclr_momentum_encoder_is_an_ema_of_the_online_encoder(drawings, batch):
    torch.manual_seed(0)
    model = RegularizedAE(latent_size=64, weights={"simclr": 1.0})
    simclr = model.regularizers["simclr"]
    assert all(torch.equal(t, o) for t, o in zip(simclr.target.parameters(), model.encoder.parameters()))
    assert not any(p.requires_grad for p in simclr.target.parameters())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, labels, exemplars = batch(drawings, 16)
    model.loss(x, labels, exemplars, generator=torch.Generator().manual_seed(0))["total"].backward()
    opt.step()
    before = [t.clone() for t in simclr.target.parameters()]
    model.after_step()
    for t0, t1, o in zip(before, simclr.target.parameters(), model.encoder.parameters()):
        torch.testing.assert_close(t1, 0.99 * t0 + 0.01 * o)
    assert any(not torch.equal(t, o) for t, o in zip(simclr.target.parameters(), model.encoder.parameters()))


def test_classification_head_has_one_logit_per_training_class():
    model = RegularizedAE(latent_size=64, weights={"classification": 1.0}, n_classes=1473)
    assert model.regularizers["classification"].classifier.out_features == 1473


# ---- options: declared once on the class, set per regularizer ----

@pytest.mark.parametrize("name", NAMES)
def test_options_are_declared_and_are_the_constructor_keywords(name):
    cls = regularizers.get(name)
    keywords = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    assert set(cls.options) == set(keywords) - set(MODEL_ARGS)
    for option, declared in cls.options.items():
        assert inspect.signature(cls.__init__).parameters[option].default is inspect.Parameter.empty  # one default
        assert declared.check(f"{name}.{option}", declared.default) == declared.default and declared.doc


def test_per_regularizer_options_reach_their_modules():
    model = RegularizedAE(latent_size=64, weights={"vq": 1, "prototype": 1, "simclr": 1, "barlow": 1},
                          regularizer_options={"vq": {"n_codes": 32, "beta": 1}, "prototype": {"projection_size": 16},
                                               "simclr": {"tau": 0.2, "momentum": 0.9, "pairing": "prot_aug2"},
                                               "barlow": {"lam": 0.01, "pairing": "prot_aug2"}})
    r = model.regularizers
    assert r["vq"].codebook.shape == (32, 4) and r["vq"].beta == 1.0
    assert r["prototype"].projector[0].out_features == 16 and r["prototype"].mask_same_class is False  # default
    assert (r["simclr"].tau, r["simclr"].momentum, r["barlow"].lam) == (0.2, 0.9, 0.01)
    assert model.pairing == "prot_aug2"


@pytest.mark.parametrize("options, match", [
    ({"simclr": {"pairing": "prototype"}}, "one pairing"),  # barlow keeps the default pairing
    ({"barlow": {"lambda": 0.1}}, r"regularizer_options\.barlow\.lambda: unknown option"),
    ({"vq": {"n_codes": 1}}, r"regularizer_options\.vq\.n_codes: must be >= 2"),
])
def test_bad_per_regularizer_options_are_value_errors_naming_them(options, match):
    with pytest.raises(ValueError, match=match):
        RegularizedAE(latent_size=64, weights={"simclr": 1, "barlow": 1}, regularizer_options=options)
