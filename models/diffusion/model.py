"""LatentDiffusion: exemplar-conditioned DDPM on autoencoder latents with classifier-free guidance (SPEC section 3).

Training (LM `ldm_cfgdm1d_stack`): eps-prediction, plain MSE, t uniform on {0..T-1}; the exemplar condition is
replaced by the null condition (zeros) with probability drop_prob. LM negates the kept exemplars; that sign flip
is a reparameterization of the input layer, so we leave it out.

Sampling: classifier-free guidance eps = (1 + w) eps_c - w eps_u (Ho & Salimans 2021, eq. 6), both terms from
one doubled batch, or another guidance rule (models/diffusion/guidance.py); ancestral DDPM over all T steps by
default, DDIM with fewer steps as an option.

Latents are standardized by a scalar mean and std measured once on training latents and kept as buffers, so they
travel with the state_dict (SPEC part 0; LM re-estimates them on a test batch at generation, a bug). The exemplar
condition is standardized with the same two numbers. Public methods take and return raw latents.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .denoiser import AttentionMLPDenoiser
from .guidance import RULES, guide
from .samplers import make_sampler
from .schedule import add_noise, alphas_cumprod, scaled_linear_betas


# What the denoiser's output means: 'eps' (the paper's, Ho et al. 2020) or 'v' (ours; Salimans & Ho 2022,
# "Progressive distillation", section 4), eps = sqrt(abar) v + sqrt(1 - abar) x_t. With LM's narrow denoiser an
# eps-model cannot reproduce x_t at high noise well enough: its error is multiplied by 1 / sqrt(abar_T) ~ 80 in
# the x_0 estimate, and sampled latents drift to 10-25x the data's spread (docs/recipe.md). A v-model's error
# reaches eps multiplied by sqrt(abar) instead. The loss is taken in eps space by default (loss_space 'eps':
# the same per-step weighting as the paper's eps-MSE) or on v itself ('v').
PREDICTIONS = ("eps", "v")


class LatentDiffusion(nn.Module):
    """Exemplar-conditioned latent diffusion model.

    Keyword-only constructor arguments are exactly `config()`, so `LatentDiffusion(**m.config())` rebuilds the
    architecture and `load_state_dict` then restores weights and latent statistics.
    """

    def __init__(
        self,
        *,
        latent_size: int,
        timesteps: int = 1000,
        beta_start: float = 0.0015,
        beta_end: float = 0.0195,
        drop_prob: float = 0.1,
        width: int = 64,
        prediction: str = "eps",
        loss_space: str = "eps",
    ):
        super().__init__()
        if latent_size < 1:
            raise ValueError(f"latent_size must be >= 1, got {latent_size}")
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
        if loss_space not in PREDICTIONS or (loss_space == "v" and prediction != "v"):
            raise ValueError(f"loss_space must be 'eps', or 'v' for a v-predicting model; got {loss_space!r} with "
                             f"prediction {prediction!r}")
        if not 0.0 <= drop_prob < 1.0:
            raise ValueError(f"drop_prob must be in [0, 1), got {drop_prob}")
        self._config = dict(
            latent_size=latent_size, timesteps=timesteps, beta_start=beta_start, beta_end=beta_end,
            drop_prob=drop_prob, width=width, prediction=prediction, loss_space=loss_space,
        )
        self.latent_size, self.timesteps, self.drop_prob = latent_size, timesteps, drop_prob
        self.prediction, self.loss_space = prediction, loss_space
        self.denoiser = AttentionMLPDenoiser(latent_size=latent_size, width=width)
        # derived from config, so not saved: checkpoints hold weights and latent stats only. The float64 betas
        # stay a plain CPU attribute (samplers read them as Python floats; .float()/.to() must not touch them).
        self.betas = scaled_linear_betas(timesteps, beta_start, beta_end)  # (T,) float64; validates the range
        self.register_buffer("alphas_cumprod", alphas_cumprod(self.betas).float(), persistent=False)
        # NaN until set_latent_stats; saved with the state_dict
        self.register_buffer("latent_mean", torch.tensor(math.nan))
        self.register_buffer("latent_std", torch.tensor(math.nan))

    def config(self) -> dict:
        """Constructor kwargs (plain Python values, safe for torch.save / weights_only loading)."""
        return dict(self._config)

    # ----- latent standardization (SPEC part 0) -----

    @property
    def has_latent_stats(self) -> bool:
        return bool(torch.isfinite(self.latent_std).item())

    def set_latent_stats(self, z: Tensor) -> None:
        """Scalar mean and std over all entries of training latents z (N, L); call once before training."""
        self._check_latents("z", z)
        if z.shape[0] < 2:
            raise ValueError(f"set_latent_stats needs at least 2 latents, got z of shape {tuple(z.shape)}")
        if not torch.isfinite(z).all():
            raise ValueError("set_latent_stats: z contains NaN or inf")
        z64 = z.detach().double()
        std = z64.std()
        if not std > 0:
            raise ValueError("set_latent_stats: z has zero spread (all entries equal)")
        self.latent_mean.fill_(z64.mean().item())
        self.latent_std.fill_(std.item())

    def standardize(self, z: Tensor) -> Tensor:
        self._require_stats()
        return (z - self.latent_mean) / self.latent_std

    def unstandardize(self, x: Tensor) -> Tensor:
        self._require_stats()
        return x * self.latent_std + self.latent_mean

    # ----- training -----

    def loss(self, z: Tensor, cond: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Scalar eps-MSE on raw latents z (B, L) with raw exemplar latents cond (B, L) (Ho et al. eq. 14)."""
        self._check_pair(z, cond)
        x0, c = self.standardize(z), self.standardize(cond)  # (B, L) each
        b, dev = x0.shape[0], x0.device
        t = torch.randint(0, self.timesteps, (b,), generator=generator, device=dev)  # (B,)
        noise = torch.randn(x0.shape, generator=generator, device=dev, dtype=x0.dtype)  # (B, L)
        keep = torch.rand(b, 1, generator=generator, device=dev) >= self.drop_prob  # (B, 1)
        c = c * keep  # null condition = zeros (CFG training)
        abar = self.alphas_cumprod.to(x0.dtype)
        x_t = add_noise(x0, noise, t, abar)  # (B, L)
        out = self.denoiser(x_t, t, c)  # (B, L)
        if self.prediction == "eps":
            return F.mse_loss(out, noise)
        a = abar[t][:, None]  # (B, 1)
        if self.loss_space == "v":  # Salimans & Ho 2022, section 4: v = sqrt(abar) eps - sqrt(1 - abar) x0
            return F.mse_loss(out, a.sqrt() * noise - (1.0 - a).sqrt() * x0)
        # the eps the v-output implies, against the true eps: the paper's per-step weighting (issue 14's measure:
        # a v-space loss, which weights high noise 1 / abar times more, left samples ~20% too spread)
        return F.mse_loss(a.sqrt() * out + (1.0 - a).sqrt() * x_t, noise)

    # ----- sampling -----

    def predict_eps(self, x: Tensor, t: Tensor, cond: Tensor, *, guidance: float,
                    guidance_rule: str = "cfg") -> Tensor:
        """Guided eps on standardized x, cond (B, L); t (1,) or (B,) int64. w = 0 skips the null branch.

        A v-predicting model's output is turned into eps here, so every sampler works on eps whatever the model
        predicts; the guidance rule (models/diffusion/guidance.py) combines the two outputs first."""
        a = self.alphas_cumprod.to(x.dtype)[t][:, None]  # (1|B, 1)
        if guidance == 0.0:
            out = self.denoiser(x, t, cond)
        else:
            both = self.denoiser(
                torch.cat([x, x]), t if t.numel() == 1 else torch.cat([t, t]), torch.cat([cond, torch.zeros_like(cond)])
            )  # (2B, L): conditional half, then null-condition half
            out_cond, out_uncond = both.chunk(2)
            out = guide(out_cond, out_uncond, guidance, guidance_rule, x=x, abar=a, prediction=self.prediction)
        if self.prediction == "v":  # eps = sqrt(abar) v + sqrt(1 - abar) x_t (Salimans & Ho 2022, appendix D)
            return a.sqrt() * out + (1.0 - a).sqrt() * x
        return out

    @torch.no_grad()
    def sample(
        self,
        cond: Tensor,
        *,
        sampler: str = "ddpm",
        steps: int | None = None,
        guidance: float = 1.0,
        guidance_rule: str = "cfg",
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """One raw latent (B, L) per raw exemplar latent in cond (B, L).

        sampler 'ddpm' (all T steps; steps must be None or T) or 'ddim' (steps in [1, T], default 50).
        The generator (on cond's device) drives the initial noise and DDPM's per-step noise: same seed, same
        samples.
        """
        self._require_stats()
        self._check_latents("cond", cond)
        if not math.isfinite(guidance):
            raise ValueError(f"guidance must be a finite number, got {guidance}")
        if guidance_rule not in RULES:
            raise ValueError(f"guidance_rule must be one of {RULES}, got {guidance_rule!r}")
        if guidance != 0.0 and self.drop_prob == 0.0:
            raise ValueError(
                f"guidance={guidance} needs an unconditional model, but this one was trained with drop_prob=0: "
                "sample with guidance=0"
            )
        stepper = make_sampler(sampler, self.betas, steps=steps)
        c = self.standardize(cond)  # (B, L)
        x = torch.randn(c.shape, generator=generator, device=c.device, dtype=c.dtype)  # x_T ~ N(0, I)
        steps_t = stepper.timesteps.to(c.device)  # (S,)
        for i in range(steps_t.shape[0]):
            eps = self.predict_eps(x, steps_t[i : i + 1], c, guidance=guidance, guidance_rule=guidance_rule)  # one t
            x = stepper.step(x, eps, i, generator=generator)
        return self.unstandardize(x)

    # ----- checks -----

    def _require_stats(self) -> None:
        if not self.has_latent_stats:
            raise RuntimeError(
                "latent statistics are not set: call set_latent_stats(training latents) before loss() or "
                "sample(), or load a state_dict that contains latent_mean and latent_std"
            )

    def _check_latents(self, name: str, z: Tensor) -> None:
        if z.ndim != 2 or z.shape[1] != self.latent_size:
            raise ValueError(f"{name} must have shape (B, {self.latent_size}), got {tuple(z.shape)}")

    def _check_pair(self, z: Tensor, cond: Tensor) -> None:
        self._check_latents("z", z)
        self._check_latents("cond", cond)
        if z.shape[0] != cond.shape[0]:
            raise ValueError(f"z and cond must have the same batch size, got {z.shape[0]} and {cond.shape[0]}")
