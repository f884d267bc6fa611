"""The two critic networks (SPEC sections 5 and 8): a SimCLR feature extractor and a prototypical network.

Version 2 (issue 11), the shipped critics: both see the images at their native 48 px through four
[Conv3x3 - BN - ReLU - MaxPool2] blocks whose widths grow (32, 48, 64, 96 by default). 48 is divisible by 2^4, so
every pooling halves the map exactly (48 -> 24 -> 12 -> 6 -> 3) and no row or column is dropped: each of the nine
final cells sees a 46-px window (3 + 1 + 2*(2 + 1) + 4*(2 + 1) + 8*(2 + 1) receptive field), together the whole
image, and the flatten + Linear(-> 256) weighs them all. The held-out manifest records the input-gradient mass per
image quadrant to show it.
- SimCLRCritic: features() = the 256-d encoder outputs (originality reads them); forward() = a 2-layer MLP
  projection to 128 used only by NT-Xent (SimCLR's head: features before it keep more than the loss needs).
- ProtoCritic: forward() = 128-d metric embeddings compared in squared L2. With `normalize` they lie on the unit
  sphere (squared L2 = 2 - 2 cosine), as the cosine classifier it was trained with (evaluation.critic_training).

Placement (v4, issue 11): with `centre_ink` an encoder first moves each image by whole pixels so that the centre of
mass of its ink sits at the image centre (`centre_of_ink`), so the critic compares shapes, not where on the canvas
they were drawn. The shipped originality critic does this: without it, the exemplar itself moved by 5 px had 64% of
the human drawings' originality (docs/critics.md, "Placement"). The arch dict records it only when it is on, so
earlier critics keep their arch and hash.

Version 1 (the 28-px critics of 2026-11, evaluation/critics/omniglot-v1): DvR's encoder, four width-64 blocks
and a Linear head; kept so results made with them can still be re-scored. `build_critic` rebuilds either from the
arch dict stored in a checkpoint.
Inputs are preprocessed images (evaluation.preprocess): float (B, 1, S, S) in {0, 1}, S = input_size.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FEATURE_DIM = 256
HEAD_DIM = 128
WIDTHS = (32, 48, 64, 96)


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2))


def ink_centre(x: torch.Tensor) -> torch.Tensor:
    """(..., H, W) non-negative ink -> (..., 2): the centre of mass of the ink (row, column) in pixels (0 if blank)."""
    rows = torch.arange(x.shape[-2], device=x.device, dtype=x.dtype)
    cols = torch.arange(x.shape[-1], device=x.device, dtype=x.dtype)
    mass = x.sum(dim=(-2, -1)).clamp_min(1e-12)
    return torch.stack([(x.sum(-1) * rows).sum(-1) / mass, (x.sum(-2) * cols).sum(-1) / mass], dim=-1)


def centre_of_ink(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) images with ink > 0 -> each moved by whole pixels (zero fill) so that the centre of mass of its
    ink lies at the image centre (within half a pixel), or as near it as the canvas allows without pushing ink
    past the border (no ink is lost). Blank images stay as they are; a binary image stays binary."""
    b, _, h, w = x.shape
    img = x[:, 0]  # (B, H, W)
    centre = ink_centre(img)  # (B, 2)
    blank = img.sum(dim=(1, 2)) == 0
    shifts = []
    for axis, (profile, n) in enumerate(((img.sum(2), h), (img.sum(1), w))):  # the ink of each row, then column
        pos = torch.arange(n, device=x.device)
        wanted = torch.floor(centre[:, axis] - (n - 1) / 2 + 0.5)  # how far the ink sits off centre; ties the
        # same way wherever the drawing sits (torch.round's half-to-even would not)
        present = profile > 0  # (B, n): rows (columns) holding ink
        first = torch.where(present, pos, n).amin(1)
        last = torch.where(present, pos, -1).amax(1)
        shift = torch.minimum(torch.maximum(wanted, (last - (n - 1)).to(wanted)), first.to(wanted))  # keep it all
        shifts.append(torch.where(blank, 0, shift).long())
    src_r = torch.arange(h, device=x.device)[None, :] + shifts[0][:, None]  # (B, H): output row i reads i + dy
    src_c = torch.arange(w, device=x.device)[None, :] + shifts[1][:, None]  # (B, W)
    inside = ((src_r >= 0) & (src_r < h))[:, :, None] & ((src_c >= 0) & (src_c < w))[:, None, :]  # (B, H, W)
    picked = x[torch.arange(b, device=x.device)[:, None, None], 0, src_r.clamp(0, h - 1)[:, :, None],
               src_c.clamp(0, w - 1)[:, None, :]]  # (B, H, W)
    return (picked * inside).unsqueeze(1)


class ConvEncoder(nn.Module):
    """(B, 1, S, S) -> (B, 256) through len(widths) 2x poolings: S = 48 -> 3x3; (v1) S = 28 -> 1x1 (floor).
    centre_ink: first move each image's ink to the centre (centre_of_ink)."""

    def __init__(self, *, input_size: int = 48, widths: tuple[int, ...] = WIDTHS, centre_ink: bool = False):
        super().__init__()
        self.input_size, self.widths, self.centre_ink = input_size, tuple(int(w) for w in widths), bool(centre_ink)
        chans = (1, *self.widths)
        self.convs = nn.Sequential(*(conv_block(a, b) for a, b in zip(chans, chans[1:])))
        side = input_size
        for _ in self.widths:
            side //= 2
        if side < 1:
            raise ValueError(f"input_size {input_size} is too small for {len(self.widths)} poolings")
        self.side = side
        self.fc = nn.Linear(self.widths[-1] * side * side, FEATURE_DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.centre_ink:
            x = centre_of_ink(x)
        h = self.convs(x).flatten(1)  # (B, widths[-1] * side^2)
        return self.fc(torch.relu(h))  # (B, 256)


class _Critic(nn.Module):
    encoder: ConvEncoder
    version: int

    @property
    def input_size(self) -> int:
        return self.encoder.input_size

    def arch(self) -> dict:
        """The constructor arguments, stored in the checkpoint to rebuild the network (see build_critic)."""
        if self.version == 1:
            return {"input_size": self.encoder.input_size, "width": self.encoder.widths[0]}
        arch = {"version": 2, "input_size": self.encoder.input_size, "widths": list(self.encoder.widths)}
        if self.encoder.centre_ink:  # only when on: the critics before it keep their arch dict and hash
            arch["centre_ink"] = True
        return arch


class SimCLRCritic(_Critic):
    """Originality critic: features() are the 256-d encoder outputs; forward() the 128-d projections for NT-Xent."""

    def __init__(self, *, input_size: int = 48, widths: tuple[int, ...] = WIDTHS, version: int = 2,
                 centre_ink: bool = False):
        super().__init__()
        self.version = version
        self.encoder = ConvEncoder(input_size=input_size, widths=widths, centre_ink=centre_ink)
        if version == 1:
            self.projection = nn.Linear(FEATURE_DIM, HEAD_DIM)
        else:
            self.projection = nn.Sequential(nn.ReLU(), nn.Linear(FEATURE_DIM, FEATURE_DIM), nn.BatchNorm1d(FEATURE_DIM),
                                            nn.ReLU(), nn.Linear(FEATURE_DIM, HEAD_DIM))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, 256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.encoder(x))  # (B, 128)


class ProtoCritic(_Critic):
    """Recognizability critic: forward() gives the 128-d metric embeddings compared in squared L2."""

    def __init__(self, *, input_size: int = 48, widths: tuple[int, ...] = WIDTHS, version: int = 2,
                 centre_ink: bool = False):
        super().__init__()
        self.version = version
        self.encoder = ConvEncoder(input_size=input_size, widths=widths, centre_ink=centre_ink)
        self.metric = nn.Linear(FEATURE_DIM, HEAD_DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.metric(torch.relu(self.encoder(x)) if self.version == 2 else self.encoder(x))  # (B, 128)
        return F.normalize(e, dim=1) if self.version == 2 else e


def build_critic(cls: type[_Critic], arch: dict) -> _Critic:
    """A critic from a stored arch dict: v2 {'version': 2, 'input_size', 'widths'[, 'centre_ink']};
    v1 {'input_size', 'width'}."""
    if arch.get("version", 1) == 1:
        w = int(arch["width"])
        return cls(input_size=int(arch["input_size"]), widths=(w, w, w, w), version=1)
    if arch["version"] != 2:
        raise ValueError(f"critic arch version {arch['version']!r} is unknown (this code builds 1 and 2)")
    return cls(input_size=int(arch["input_size"]), widths=tuple(int(w) for w in arch["widths"]), version=2,
               centre_ink=bool(arch.get("centre_ink", False)))


@torch.no_grad()
def embed_in_batches(fn, images: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """fn over (B, 1, S, S) preprocessed images in batches (eval-mode critics) -> concatenated outputs."""
    return torch.cat([fn(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
