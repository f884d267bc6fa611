"""The attention-MLP denoiser eps_theta(x_t, t, exemplar) of LM (`att_mlp_1d`, SPEC section 3).

A U-Net whose "feature maps" are plain vectors: every layer is a Linear, the levels narrow 64 -> 64 -> 32, and
skips are concatenated on the way up. The exemplar latent is concatenated to x_t at the input (no cross-attention).

Shape letters: B batch, L latent size, C channels of a level, H heads, N = dim_head (scalar tokens per head).

Speed: sampling calls this 1000 times on thousands of latents with one t for the whole batch. `t` may be (1,)
(broadcast over the batch), so the time MLP and every FiLM projection then run on one row, not B rows.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TIME_DIM = 128  # sinusoidal size and time-MLP width, fixed in LM whatever the model width
HEADS, DIM_HEAD = 4, 32  # every attention layer: 4 heads x 32 scalar tokens
GROUPS = 8  # GroupNorm groups in every block


def sinusoidal_embedding(t: Tensor, dim: int = TIME_DIM, theta: float = 10000.0) -> Tensor:
    """(B,) integer steps -> (B, dim) [sin | cos] features (Vaswani et al. 2017 positional encoding)."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=t.device) * (-math.log(theta) / (half - 1)))  # (half,)
    angles = t.float()[:, None] * freqs[None, :]  # (B, half)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)  # (B, dim)


class RMSNorm(nn.Module):
    """x / ||x|| * sqrt(C) * g over the channel axis (no mean subtraction, no epsilon beyond F.normalize's)."""

    def __init__(self, dim: int):
        super().__init__()
        self.g = nn.Parameter(torch.ones(dim))
        self.scale = dim**0.5

    def forward(self, x: Tensor) -> Tensor:  # (B, C) -> (B, C)
        return F.normalize(x, dim=-1) * (self.g * self.scale)


class ResBlock(nn.Module):
    """LM's ResnetBlock_MLP: Linear-GN-FiLM(time)-SiLU, Linear-GN-SiLU, plus a residual (Linear if C changes)."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.film = nn.Linear(TIME_DIM, 2 * dim_out)  # applied to SiLU(time embedding): (scale, shift)
        self.lin1, self.norm1 = nn.Linear(dim_in, dim_out), nn.GroupNorm(GROUPS, dim_out)
        self.lin2, self.norm2 = nn.Linear(dim_out, dim_out), nn.GroupNorm(GROUPS, dim_out)
        self.skip = nn.Linear(dim_in, dim_out) if dim_in != dim_out else nn.Identity()

    def forward(self, x: Tensor, time: Tensor) -> Tensor:
        # x (B, C_in); time (B, TIME_DIM) or (1, TIME_DIM), already through SiLU
        scale, shift = self.film(time).chunk(2, dim=-1)  # (B|1, C_out) each
        h = self.norm1(self.lin1(x))  # (B, C_out)
        h = F.silu(torch.addcmul(shift, h, scale + 1.0))  # FiLM: h * (1 + scale) + shift
        h = F.silu(self.norm2(self.lin2(h)))  # (B, C_out)
        return h + self.skip(x)


class ScalarTokenAttention(nn.Module):
    """LM's MyAttention: within each head the N channels are N tokens of dimension 1, attended with softmax.

    score_ij = q_i k_j / sqrt(N), out_i = sum_j softmax_j(score_ij) v_j; then Linear(H N -> C) and RMSNorm.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.to_qkv = nn.Linear(dim, 3 * HEADS * DIM_HEAD, bias=False)
        self.to_out = nn.Linear(HEADS * DIM_HEAD, dim)
        self.out_norm = RMSNorm(dim)

    def forward(self, x: Tensor) -> Tensor:  # (B, C) -> (B, C)
        b = x.shape[0]
        q, k, v = self.to_qkv(x).view(b, 3, HEADS, DIM_HEAD, 1).unbind(1)  # (B, H, N, 1) each
        out = F.scaled_dot_product_attention(q, k, v, scale=DIM_HEAD**-0.5)  # (B, H, N, 1)
        return self.out_norm(self.to_out(out.reshape(b, HEADS * DIM_HEAD)))  # (B, C)


class AttentionBlock(nn.Module):
    """Residual(RMSNorm -> attention): x + attn(norm(x))."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = RMSNorm(dim)
        self.attn = ScalarTokenAttention(dim)

    def forward(self, x: Tensor) -> Tensor:  # (B, C) -> (B, C)
        return x + self.attn(self.norm(x))


class DownLevel(nn.Module):
    """Two ResBlocks (a skip stored after each; the second after attention), attention, Linear to next width."""

    def __init__(self, dim: int, dim_next: int):
        super().__init__()
        self.block1, self.block2 = ResBlock(dim, dim), ResBlock(dim, dim)
        self.attn = AttentionBlock(dim)
        self.to_next = nn.Linear(dim, dim_next)

    def forward(self, x: Tensor, time: Tensor, skips: list[Tensor]) -> Tensor:  # (B, C) -> (B, C_next)
        x = self.block1(x, time)
        skips.append(x)
        x = self.attn(self.block2(x, time))
        skips.append(x)
        return self.to_next(x)


class UpLevel(nn.Module):
    """Mirror of DownLevel: each ResBlock eats [x || skip]; attention; Linear back to the wider width."""

    def __init__(self, dim: int, dim_skip: int, dim_next: int):
        super().__init__()
        self.block1 = ResBlock(dim + dim_skip, dim)
        self.block2 = ResBlock(dim + dim_skip, dim)
        self.attn = AttentionBlock(dim)
        self.to_next = nn.Linear(dim, dim_next)

    def forward(self, x: Tensor, time: Tensor, skips: list[Tensor]) -> Tensor:  # (B, C) -> (B, C_next)
        x = self.block1(torch.cat([x, skips.pop()], dim=-1), time)
        x = self.block2(torch.cat([x, skips.pop()], dim=-1), time)
        return self.to_next(self.attn(x))


class AttentionMLPDenoiser(nn.Module):
    """eps_theta([exemplar || x_t], t) -> (B, L). About 0.47 M parameters at L = 128, width = 64."""

    def __init__(self, *, latent_size: int, width: int = 64):
        super().__init__()
        if width % (2 * GROUPS) != 0:
            raise ValueError(f"width must be a multiple of {2 * GROUPS} (GroupNorm({GROUPS}) at width/2), got {width}")
        dims = [width, width, width // 2]  # LM: init_dim, then int(dim // m) for unet_mult (1, 2)
        self.time_mlp = nn.Sequential(
            nn.Linear(TIME_DIM, TIME_DIM), nn.GELU(), nn.Linear(TIME_DIM, TIME_DIM)
        )
        self.input = nn.Linear(2 * latent_size, width)
        self.downs = nn.ModuleList(DownLevel(d, d_next) for d, d_next in zip(dims[:-1], dims[1:]))
        mid = dims[-1]
        self.mid1, self.mid_attn, self.mid2 = ResBlock(mid, mid), AttentionBlock(mid), ResBlock(mid, mid)
        # up levels walk the down levels backwards: width d_next -> d, with skips of width d
        self.ups = nn.ModuleList(UpLevel(d_next, d, d) for d, d_next in reversed(list(zip(dims[:-1], dims[1:]))))
        self.final = ResBlock(2 * width, width)
        self.output = nn.Linear(width, latent_size)

    def time_features(self, t: Tensor) -> Tensor:
        """(B,) or (1,) int steps -> (B|1, TIME_DIM), with the SiLU every FiLM applies first."""
        return F.silu(self.time_mlp(sinusoidal_embedding(t)))

    def forward(self, x: Tensor, t: Tensor, cond: Tensor) -> Tensor:
        # x, cond: (B, L) standardized latents; t: (B,) or (1,) int64 steps in [0, T)
        time = self.time_features(t)  # (B|1, 128)
        x = self.input(torch.cat([cond, x], dim=-1))  # (B, W)
        first = x
        skips: list[Tensor] = []
        for level in self.downs:
            x = level(x, time, skips)  # (B, 64) -> (B, 64) -> (B, 32) at W = 64
        x = self.mid2(self.mid_attn(self.mid1(x, time)), time)  # (B, W/2)
        for level in self.ups:
            x = level(x, time, skips)  # (B, 32) -> (B, 64) -> (B, 64)
        x = self.final(torch.cat([x, first], dim=-1), time)  # (B, 2W) -> (B, W)
        return self.output(x)  # (B, L)
