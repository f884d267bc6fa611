"""The two critic networks (SPEC sections 5 and 8): a SimCLR feature extractor and a prototypical network.

Both use DvR's Omniglot encoder: 4 x [Conv3x3(width) - BN - ReLU - MaxPool2], flatten, ReLU, Linear(-> 256).
The SimCLR critic adds a projection head (256 -> 128) used only by the NT-Xent loss; originality reads the 256-d
features before it. The ProtoNet critic adds a metric head (256 -> 128); recognizability reads those embeddings.
Inputs are preprocessed images (evaluation.preprocess): float (B, 1, S, S) in {0, 1}, S = input_size.
"""
from __future__ import annotations

import torch
from torch import nn

FEATURE_DIM = 256
HEAD_DIM = 128


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2))


class ConvEncoder(nn.Module):
    """(B, 1, S, S) -> (B, 256). Four 2x poolings: S = 48 -> 3x3, S = 28 -> 1x1 (floor)."""

    def __init__(self, *, input_size: int = 48, width: int = 64, blocks: int = 4):
        super().__init__()
        self.input_size, self.width = input_size, width
        chans = [1] + [width] * blocks
        self.convs = nn.Sequential(*(conv_block(a, b) for a, b in zip(chans, chans[1:])))
        side = input_size
        for _ in range(blocks):
            side //= 2
        if side < 1:
            raise ValueError(f"input_size {input_size} is too small for {blocks} poolings")
        self.fc = nn.Linear(width * side * side, FEATURE_DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(x).flatten(1)  # (B, width * side^2)
        return self.fc(torch.relu(h))  # (B, 256)


class _Critic(nn.Module):
    encoder: ConvEncoder

    @property
    def input_size(self) -> int:
        return self.encoder.input_size

    def arch(self) -> dict:
        """The constructor arguments, stored in the checkpoint to rebuild the network."""
        return {"input_size": self.encoder.input_size, "width": self.encoder.width}


class SimCLRCritic(_Critic):
    """Originality critic: features() are the 256-d encoder outputs; forward() the 128-d projections for NT-Xent."""

    def __init__(self, *, input_size: int = 48, width: int = 64):
        super().__init__()
        self.encoder = ConvEncoder(input_size=input_size, width=width)
        self.projection = nn.Linear(FEATURE_DIM, HEAD_DIM)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, 256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.encoder(x))  # (B, 128)


class ProtoCritic(_Critic):
    """Recognizability critic: forward() gives the 128-d metric embeddings compared in squared L2."""

    def __init__(self, *, input_size: int = 48, width: int = 64):
        super().__init__()
        self.encoder = ConvEncoder(input_size=input_size, width=width)
        self.metric = nn.Linear(FEATURE_DIM, HEAD_DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.metric(self.encoder(x))  # (B, 128)


@torch.no_grad()
def embed_in_batches(fn, images: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """fn over (B, 1, S, S) preprocessed images in batches (eval-mode critics) -> concatenated outputs."""
    return torch.cat([fn(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
