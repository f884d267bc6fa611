"""The 48x48 regularized autoencoder (models/rae.py): architecture, loss composition, validation."""
from __future__ import annotations

import math

import pytest
import torch

from models import regularizers
from models.rae import RegularizedAE
from models.regularizers.base import Regularizer


def _layer_formula(latent: int, width: int) -> int:
    """Parameter count of SPEC section 1's layers, written out independently of the model code."""
    conv = lambda c_in, c_out, k, bias: c_in * c_out * k * k + (c_out if bias else 0)  # noqa: E731
    bn = lambda c: 2 * c  # noqa: E731
    enc_ch = [1, width // 8, width // 4, width // 2, width]
    encoder = sum(conv(a, b, 4, False) + bn(b) for a, b in zip(enc_ch, enc_ch[1:])) + 9 * width * latent + latent
    dec_ch = [width, width // 2, width // 4, width // 8]
    decoder = (conv(latent, width, 6, True) + bn(width)
               + sum(conv(a, b, 4, True) + bn(b) for a, b in zip(dec_ch, dec_ch[1:]))
               + conv(width // 8, 1, 4, True))
    return encoder + decoder


@pytest.mark.parametrize("latent,width", [(128, 128), (64, 128), (32, 64)])
def test_parameter_count_follows_the_layer_formula(latent, width):
    n = sum(p.numel() for p in RegularizedAE(latent_size=latent, width=width).parameters())
    assert n == _layer_formula(latent, width)
    if (latent, width) == (128, 128):
        assert abs(n - 1.08e6) < 0.005e6  # SPEC section 1: about 1.08 M parameters at L = 128


def test_shapes_bottleneck_and_output_range(drawings):
    model = RegularizedAE(latent_size=64).eval().requires_grad_(False)
    x = drawings.x[:16]
    assert model.encoder.convs[:-1](x).shape == (16, 128, 3, 3)  # paddings 1, 1, 2, 1: 48 -> 24 -> 12 -> 7 -> 3
    z = model.encode(x)
    assert z.shape == (16, 64)
    out = model.decode(torch.randn(16, 64) * 10)
    assert out.shape == (16, 1, 48, 48) and float(out.min()) >= 0 and float(out.max()) <= 1


def test_reconstruction_loss_is_per_image_sse_averaged_over_the_batch(drawings, batch):
    torch.manual_seed(0)
    model = RegularizedAE(latent_size=64).train()
    x, labels, exemplars = batch(drawings, 32)
    out = model.loss(x, labels, exemplars)
    with torch.no_grad():
        x_hat = model(x)  # train mode: the same batch statistics, so the same reconstruction
    expected = sum(float(((x_hat[i] - x[i]) ** 2).sum()) for i in range(32)) / 32
    assert out.keys() == {"total", "rec"}
    assert math.isclose(out["rec"].item(), expected, rel_tol=1e-5)
    assert out["total"].item() == out["rec"].item()


COMBINATIONS = [
    {"prototype": 1.0, "barlow": 10.0},
    {"kl": 0.5, "vq": 2.0, "classification": 0.1},
    {"simclr": 1.0, "barlow": 0.3, "prototype": 2.0},
    {"kl": 1e-3, "vq": 1.0, "classification": 1.0, "prototype": 1.0, "simclr": 1.0, "barlow": 0.005},
]


@pytest.mark.parametrize("weights", COMBINATIONS, ids=lambda w: "+".join(w))
def test_total_is_rec_plus_weighted_regularizer_losses(drawings, weights, batch):
    torch.manual_seed(0)
    model = RegularizedAE(latent_size=64, weights=weights, n_classes=48)
    x, labels, exemplars = batch(drawings, 32)
    out = model.loss(x, labels, exemplars, generator=torch.Generator().manual_seed(0))
    assert out.keys() == {"total", "rec", *weights}
    expected = out["rec"].item() + sum(w * out[name].item() for name, w in weights.items())
    assert all(math.isfinite(v.item()) for v in out.values())
    assert math.isclose(out["total"].item(), expected, rel_tol=1e-6)
    out["total"].backward()
    assert all(p.grad is not None for p in model.encoder.parameters())


def test_mixed_precision_runs_the_layers_in_bf16_and_the_losses_in_fp32(drawings, batch):
    """rae.precision bf16: inside mixed_precision the convolutions compute in bfloat16, the latents, the
    reconstruction and every loss come out fp32, and the loss and its gradient stay near fp32's; outside, and
    after an error inside, the layers are fp32 again."""
    torch.manual_seed(0)
    model = RegularizedAE(latent_size=64, weights={"prototype": 1.0, "barlow": 1.0}, n_classes=48)
    x, labels, exemplars = batch(drawings, 32)
    conv_dtypes = []
    model.encoder.convs[0].register_forward_hook(lambda m, i, out: conv_dtypes.append(out.dtype))
    model.decoder.net[-2].register_forward_hook(lambda m, i, out: conv_dtypes.append(out.dtype))

    def loss_and_grad(dtype):
        model.zero_grad(set_to_none=True)
        with model.mixed_precision(dtype):
            out = model.loss(x, labels, exemplars, generator=torch.Generator().manual_seed(0))
        out["total"].backward()
        return out, torch.cat([p.grad.flatten() for p in model.encoder.parameters()])

    full, g32 = loss_and_grad(None)
    assert set(conv_dtypes) == {torch.float32}
    conv_dtypes.clear()
    mixed, g16 = loss_and_grad(torch.bfloat16)
    assert set(conv_dtypes) == {torch.bfloat16}
    assert all(v.dtype == torch.float32 for v in mixed.values()) and g16.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in model.parameters())
    for name in ("rec", "prototype", "barlow"):  # bfloat16 keeps ~3 significant digits in each layer
        assert math.isclose(mixed[name].item(), full[name].item(), rel_tol=0.02), name
    assert torch.nn.functional.cosine_similarity(g16, g32, dim=0) > 0.95  # 0.989 measured at this batch
    conv_dtypes.clear()
    with pytest.raises(RuntimeError, match="inside"):
        with model.mixed_precision(torch.bfloat16):
            raise RuntimeError("inside")
    assert model.encode(x).dtype == torch.float32 and set(conv_dtypes) == {torch.float32}


def test_simclr_and_barlow_share_the_augmented_views(drawings, batch):
    x, labels, exemplars = batch(drawings, 32)
    recs = {}
    for weights in ({}, {"simclr": 1.0}, {"barlow": 1.0}, {"simclr": 1.0, "barlow": 1.0}):
        torch.manual_seed(0)  # the same autoencoder weights for every setting (regularizers are built after it)
        model = RegularizedAE(latent_size=64, weights=weights)
        out = model.loss(x, labels, exemplars, generator=torch.Generator().manual_seed(3))
        recs["+".join(weights) or "none"] = out["rec"].item()
    # views are drawn once per batch from the generator: every view-using setting reconstructs the same view 1
    assert recs["simclr"] == recs["barlow"] == recs["simclr+barlow"]
    assert recs["simclr"] != recs["none"]  # view 1, not the image, is the reconstruction target


def test_pairings_choose_the_second_view(drawings, batch):
    x, labels, exemplars = batch(drawings, 32)
    out = {}
    for pairing in (None, "augmentation", "prot_aug2", "prototype"):
        torch.manual_seed(0)
        weights = {} if pairing is None else {"simclr": 1.0}
        model = RegularizedAE(latent_size=64, weights=weights, regularizer_options={"pairing": pairing or "prototype"})
        out[pairing] = model.loss(x, labels, exemplars, generator=torch.Generator().manual_seed(3))
    # 'prototype' augments nothing: the image itself is reconstructed, as without a view-based regularizer
    assert out["prototype"]["rec"].item() == out[None]["rec"].item()
    # 'prot_aug2' changes only view 2 (the exemplar's augmentation), so view 1 and the reconstruction are shared
    assert out["prot_aug2"]["rec"].item() == out["augmentation"]["rec"].item()
    assert out["prot_aug2"]["simclr"].item() != out["augmentation"]["simclr"].item()


def test_zero_weight_builds_nothing():
    model = RegularizedAE(latent_size=64, weights={"simclr": 0.0, "kl": 0})
    assert len(model.regularizers) == 0 and not model.uses_views
    n_plain = sum(p.numel() for p in RegularizedAE(latent_size=64).parameters())
    assert sum(p.numel() for p in model.parameters()) == n_plain


def test_options_reach_the_regularizers_that_have_them():
    model = RegularizedAE(latent_size=64, weights={"prototype": 1, "simclr": 1},
                          regularizer_options={"mask_same_class": True, "tau": 0.1, "n_codes": 16})
    assert model.regularizers["prototype"].mask_same_class is True
    assert model.regularizers["simclr"].tau == 0.1  # n_codes belongs to the unbuilt VQ: unused, not an error
    assert RegularizedAE(weights={"vq": 1}, regularizer_options={"n_codes": 16}).regularizers["vq"].codebook.shape \
        == (16, 4)


def test_encode_gives_the_latent_the_diffusion_model_uses(drawings):
    x = drawings.x[:16]
    kl = RegularizedAE(latent_size=64, weights={"kl": 1}).eval()
    a = kl.encode(x, generator=torch.Generator().manual_seed(0))
    b = kl.encode(x, generator=torch.Generator().manual_seed(0))
    c = kl.encode(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c)  # a sample, reproducible from the generator
    vq = RegularizedAE(latent_size=64, weights={"vq": 1}).eval()
    with torch.no_grad():
        words = vq.encode(x).view(-1, 1, 4)                       # (N, 1, 4)
        codebook = vq.regularizers["vq"].codebook.detach().unsqueeze(0)  # (1, K, 4)
    assert float((words - codebook).pow(2).sum(-1).min(1).values.max()) < 1e-12  # every word is a code


def test_registry_names_its_classes():
    for name in regularizers.NAMES:
        cls = regularizers.get(name)
        assert issubclass(cls, Regularizer) and cls.name == name
    with pytest.raises(ValueError, match="'none'"):
        regularizers.get("none")


@pytest.mark.parametrize("kwargs,match", [
    ({"weights": {"vae": 1.0}}, "vae"),
    ({"weights": {"kl": -1.0}}, "kl"),
    ({"weights": {"barlow": float("nan")}}, "barlow"),
    ({"weights": {"simclr": float("inf")}}, "simclr"),
    ({"weights": {"vq": "1"}}, "vq"),
    ({"regularizer_options": {"temperature": 0.5}}, "temperature"),
    ({"augmentation": "extreme"}, "extreme"),
    ({"weights": {"classification": 1.0}}, "n_classes"),
    ({"width": 12}, "width"),
    ({"latent_size": 0}, "latent_size"),
    ({"latent_size": 30, "weights": {"vq": 1.0}}, "word_size"),
    ({"weights": {"simclr": 1.0}, "regularizer_options": {"tau": 0.0}}, "tau"),
    ({"weights": {"barlow": 1.0}, "regularizer_options": {"pairing": "shuffle"}}, "pairing"),
])
def test_bad_settings_raise_value_errors_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RegularizedAE(**kwargs)


def test_bad_batch_shapes_are_errors():
    model = RegularizedAE(latent_size=64)
    x = torch.rand(4, 1, 48, 48)
    with pytest.raises(ValueError, match="x must be"):
        model.loss(torch.rand(4, 1, 28, 28), torch.zeros(4, dtype=torch.long), x)
    with pytest.raises(ValueError, match="exemplars"):
        model.loss(x, torch.zeros(4, dtype=torch.long), x[:2])
    with pytest.raises(ValueError, match="labels"):
        model.loss(x, torch.zeros(3, dtype=torch.long), x)
