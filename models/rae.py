"""The 48x48 regularized autoencoder of LM (SPEC section 1) with pluggable latent regularizers (SPEC section 2).

    total = rec + sum_i w_i * L_i,   rec = per-image sum of squared errors, averaged over the batch.
"""
from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor, nn

from models import regularizers
from models.augment import get_strength, two_views
from models.regularizers.base import Regularizer, Step
from models.regularizers.options import check_options

IMAGE_SIZE = 48
PADDINGS = (1, 1, 2, 1)  # k4 s2 convs: 48 -> 24 -> 12 -> 7 -> 3 (the 2 makes the 3x3 bottleneck)
_EMPTY: Mapping = MappingProxyType({})
# Conv weights and activations are kept channels-last (NHWC): oneDNN's CPU convolutions, the 16 -> 1 output conv
# above all, run about a third faster on this layout (bench/bench_rae.py). Values are the same as in NCHW.
NHWC = torch.channels_last


def _autocast(x: Tensor, dtype: torch.dtype | None):
    """torch.autocast on x's device in `dtype`, or nothing (None: the layers run in their own fp32)."""
    return torch.autocast(x.device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


class Encoder(nn.Module):
    """4 x [Conv k4 s2 (no bias) - BN - ReLU] with widths width/8 .. width, flatten, Linear -> latent."""

    def __init__(self, *, latent_size: int, width: int):
        super().__init__()
        chans = [1, width // 8, width // 4, width // 2, width]
        layers: list[nn.Module] = []
        for c_in, c_out, pad in zip(chans, chans[1:], PADDINGS):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, pad, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*layers, nn.Flatten())
        self.feature_size = width * 3 * 3
        self.head = nn.Linear(self.feature_size, latent_size)  # no activation on the latent
        self.to(memory_format=NHWC)
        self.autocast_dtype: torch.dtype | None = None  # RegularizedAE.mixed_precision sets it while training

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        with _autocast(x, self.autocast_dtype):
            feats = self.convs(x.contiguous(memory_format=NHWC))  # (B, 1, 48, 48) -> (B, 9 width), NCHW order
            z = self.head(feats)
        return feats.float(), z.float()  # (B, 9 width), (B, L): fp32 for every loss and regularizer


class Decoder(nn.Module):
    """z as a 1x1 map: ConvT k6 -> 6x6, 3 x [ConvT k4 s2 p1 - BN - ReLU] -> 48x48, pad, Conv k4, sigmoid."""

    def __init__(self, *, latent_size: int, width: int):
        super().__init__()
        chans = [width, width // 2, width // 4, width // 8]
        layers: list[nn.Module] = [nn.ConvTranspose2d(latent_size, width, 6), nn.BatchNorm2d(width), nn.ReLU(True)]
        for c_in, c_out in zip(chans, chans[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        layers += [nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(chans[-1], 1, 4, 1, 1), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)
        self.to(memory_format=NHWC)
        self.autocast_dtype: torch.dtype | None = None

    def forward(self, z: Tensor) -> Tensor:
        with _autocast(z, self.autocast_dtype):
            out = self.net(z[:, :, None, None].contiguous(memory_format=NHWC))
        return out.float()  # (B, L) -> (B, 1, 48, 48) in [0, 1]


class RegularizedAE(nn.Module):
    """Autoencoder + the regularizers named in `weights` (name -> weight; weight 0 = not built at all).

    regularizer_options: per regularizer, {name: {option: value}} (what a config's rae.regularizer_options
    holds), e.g. {'simclr': {'tau': 0.1}}; or flat, {option: value}, e.g. {'mask_same_class': True}, for every
    built regularizer that declares that option (so a shared option reaches all of them). The two may be mixed;
    a regularizer's own entry wins. Options are the ones each class declares (Regularizer.options), checked by
    models.regularizers.options; an option no registered regularizer has is a ValueError, one that only unbuilt
    regularizers have is unused. Options not given take their declared defaults.
    """

    def __init__(self, *, latent_size: int = 128, width: int = 128, weights: Mapping[str, float] = _EMPTY,
                 n_classes: int = 0, augmentation: str = "normal", regularizer_options: Mapping = _EMPTY):
        super().__init__()
        _check_int("latent_size", latent_size, minimum=1)
        _check_int("width", width, minimum=8)
        if width % 8:
            raise ValueError(f"width={width} must be a multiple of 8 (channels width/8 .. width)")
        _check_int("n_classes", n_classes, minimum=0)
        get_strength(augmentation)
        self.latent_size, self.width, self.n_classes, self.augmentation = latent_size, width, n_classes, augmentation
        self.weights = _check_weights(weights)
        self.regularizer_options = _check_options(regularizer_options)
        self.encoder = Encoder(latent_size=latent_size, width=width)
        self.decoder = Decoder(latent_size=latent_size, width=width)
        model_args = dict(latent_size=latent_size, feature_size=self.encoder.feature_size, n_classes=n_classes,
                          encoder=self.encoder)
        self.regularizers = nn.ModuleDict({
            name: _build(name, self.regularizer_options, model_args) for name in self.weights})
        # one pairing at most: the views are made once a batch, for every view-based regularizer alike
        pairings = {name: r.pairing for name, r in self.regularizers.items() if r.uses_views}
        if len(set(pairings.values())) > 1:
            raise ValueError(f"regularizer_options: the view-based regularizers need one pairing, got {pairings}")
        self.pairing: str | None = next(iter(pairings.values()), None)
        self.uses_views = self.pairing is not None

    def _latent(self, x: Tensor, *, encoder: nn.Module | None = None,
                generator: torch.Generator | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Images -> latents (B, L) through `encoder` (default: online) and every bottleneck; their losses."""
        feats, z = (self.encoder if encoder is None else encoder)(x)
        losses = {}
        for name, reg in self.regularizers.items():
            z, loss = reg.bottleneck(feats, z, generator=generator)
            if loss is not None:
                losses[name] = loss
        return z, losses

    @contextlib.contextmanager
    def mixed_precision(self, dtype: torch.dtype | None) -> Iterator[None]:
        """Inside: the encoder's and decoder's layers run under torch.autocast in `dtype` (None: fp32), their
        outputs handed on as fp32, so that the reconstruction error and every regularizer's loss are computed in
        fp32 (a momentum encoder copied before stays fp32). Training only (models.train); evaluation runs outside."""
        nets = (self.encoder, self.decoder)
        before = [net.autocast_dtype for net in nets]
        for net in nets:
            net.autocast_dtype = dtype
        try:
            yield
        finally:
            for net, old in zip(nets, before):
                net.autocast_dtype = old

    def encode(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """(B, 1, 48, 48) -> (B, L): the latents the diffusion model works on (KL: a sample; VQ: quantized)."""
        return self._latent(x, generator=generator)[0]

    def decode(self, z: Tensor) -> Tensor:
        """(B, L) -> (B, 1, 48, 48) in [0, 1]."""
        return self.decoder(z)

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        return self.decode(self.encode(x, generator=generator))

    def loss(self, x: Tensor, labels: Tensor, exemplars: Tensor, *,
             generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """{'total', 'rec', <name>: unweighted L_i} for one batch; random draws use `generator` (its device)."""
        _check_batch(x, labels, exemplars)
        view2 = None
        if self.uses_views:  # LM: view 1 replaces the image, also as the reconstruction target
            x, view2 = self._views(x, exemplars, generator)
        z, bottleneck_losses = self._latent(x, generator=generator)      # (B, L)
        rec = (self.decoder(z) - x).pow(2).sum((1, 2, 3)).mean()         # SPEC section 1
        step = Step(x=x, z=z, labels=labels, exemplars=exemplars, view2=view2, bottleneck_losses=bottleneck_losses,
                    encode=lambda images, encoder=None: self._latent(images, encoder=encoder, generator=generator)[0])
        out = {"total": rec, "rec": rec}
        for name, reg in self.regularizers.items():
            out[name] = reg.loss(step)
            out["total"] = out["total"] + self.weights[name] * out[name]
        return out

    def _views(self, x: Tensor, exemplars: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """(view 1, view 2) of a batch for the pairing (models.regularizers.base.PAIRINGS)."""
        if self.pairing == "prototype":
            return x, exemplars
        second = exemplars if self.pairing == "prot_aug2" else x
        return two_views(x, second, strength=self.augmentation, generator=generator)

    def after_step(self) -> None:
        """Call after optimizer.step(): lets regularizers update non-gradient state (momentum encoder)."""
        for reg in self.regularizers.values():
            reg.after_step(self.encoder)


def _build(name: str, options: Mapping[str, Any], model_args: dict[str, Any]) -> Regularizer:
    """Instantiate a registered regularizer with the model arguments it names and every option it declares."""
    cls = regularizers.get(name)
    given = {k: v for k, v in options.items() if k in cls.options}  # flat options it declares
    given.update(options.get(name, {}))                              # its own entry
    values = check_options(f"regularizer_options.{name}", cls.options, given)
    params = inspect.signature(cls.__init__).parameters
    return cls(**{k: v for k, v in model_args.items() if k in params}, **values)


def _check_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Validated {name: weight} of the regularizers to build, in registry order, zero weights dropped."""
    if not isinstance(weights, Mapping):
        raise ValueError(f"weights must be a mapping name -> weight, got {type(weights).__name__}")
    for name, w in weights.items():
        regularizers.get(name)  # ValueError naming an unknown regularizer
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ValueError(f"weights[{name!r}] = {w!r}: a regularizer weight must be a finite number >= 0")
    return {name: float(weights[name]) for name in regularizers.NAMES if weights.get(name, 0) != 0}


def _check_options(options: Mapping) -> dict[str, Any]:
    """Flat options must be declared by some registered regularizer; a regularizer's own entry is checked whole."""
    if not isinstance(options, Mapping):
        raise ValueError(f"regularizer_options must be a mapping option -> value, got {options!r}")
    for name, given in options.items():
        if name in regularizers.NAMES:
            check_options(f"regularizer_options.{name}", regularizers.get(name).options, given)
    known = {opt for name in regularizers.NAMES for opt in regularizers.get(name).options}
    unknown = sorted(k for k in options if k not in known and k not in regularizers.NAMES)
    if unknown:
        raise ValueError(f"regularizer_options: unknown option(s) {unknown}; known: {sorted(known)}")
    return dict(options)


def _check_int(key: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{key}={value!r} must be an integer >= {minimum}")


def _check_batch(x: Tensor, labels: Tensor, exemplars: Tensor) -> None:
    if x.dim() != 4 or tuple(x.shape[1:]) != (1, IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"x must be (B, 1, {IMAGE_SIZE}, {IMAGE_SIZE}) images, got {tuple(x.shape)}")
    if tuple(exemplars.shape) != tuple(x.shape):
        raise ValueError(f"exemplars must match x's shape {tuple(x.shape)}, got {tuple(exemplars.shape)}")
    if tuple(labels.shape) != (x.shape[0],):
        raise ValueError(f"labels must be ({x.shape[0]},), got {tuple(labels.shape)}")
