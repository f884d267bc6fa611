"""Generate new drawings of a class from its exemplar: encode, sample latents with the LDM, decode."""
from __future__ import annotations

import torch

from models.data import to_float
from models.device import module_device


@torch.no_grad()
def generate(ae, ldm, exemplars: torch.Tensor, *, per_class: int, sampler: str = "ddpm", steps: int | None = None,
             guidance: float = 1.0, guidance_rule: str = "cfg", seed: int = 0, batch_size: int = 4096,
             return_latents: bool = False):
    """Samples for each exemplar: uint8 (C, 48, 48) -> float (C, per_class, 48, 48) in [0, 1].

    The exemplar latent is encoded once per class (a KL model's latent is a sample, seeded); the LDM then runs on
    batches of up to `batch_size` latents, so a whole evaluation is a few large batched sampling loops. It runs on
    the models' device (models.run.load_run puts them there) and returns CPU samples; with return_latents, also
    the sampled raw latents (C * per_class, L), grouped by class (evaluation.ceilings reads them).
    """
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    ae.eval()
    ldm.eval()
    device = module_device(ldm)
    torch.manual_seed(seed)
    cond = ae.encode(to_float(exemplars.to(device)))  # (C, L)
    cond = cond.repeat_interleave(per_class, dim=0)  # (C * per_class, L)
    generator = torch.Generator(device=device).manual_seed(seed)  # on cond's device, as ldm.sample draws
    images, latents = [], []
    for start in range(0, len(cond), batch_size):
        z = ldm.sample(cond[start : start + batch_size], sampler=sampler, steps=steps, guidance=guidance,
                       guidance_rule=guidance_rule, generator=generator)  # (b, L)
        images.append(ae.decode(z)[:, 0])  # (b, 48, 48)
        latents.append(z)
    samples = torch.cat(images).view(len(exemplars), per_class, 48, 48).cpu()
    return (samples, torch.cat(latents).cpu()) if return_latents else samples
