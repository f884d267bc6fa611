"""Training recipes of the two critics (SPEC sections 5 and 8), on a dataset's training classes only.

- Recognizability critic: a prototypical network trained on 1-shot episodes whose support is the class exemplar
  (DvR: 60-way training with 5 queries per class, 20-way testing), squared-L2 logits, Adam with step decay.
- Originality critic: SimCLR, NT-Xent with tau = 0.5 on 128-d projections of two augmented views (the batched
  augmentations of models/augment.py, LM's 'normal' strength), each view then preprocessed like every evaluated
  image (min-max, binarize). DvR used RMSprop for 100 epochs; Adam for a few hundred steps is what fits the
  few-minutes-on-2-cores budget, with the held-out scores in the manifest saying how good the result is.
Every image is preprocessed exactly as at evaluation time (evaluation.preprocess), so the critics never see
anything in training that differs in kind from what they score.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F

from evaluation.networks import ProtoCritic, SimCLRCritic
from evaluation.preprocess import DEFAULT_THRESHOLD, preprocess


@dataclass(frozen=True)
class ProtoRecipe:
    input_size: int = 28
    width: int = 64
    episodes: int = 600
    way: int = 60
    queries: int = 5
    lr: float = 1e-3
    lr_decay_every: int = 200   # StepLR: the learning rate halves every this many episodes
    seed: int = 0


@dataclass(frozen=True)
class SimCLRRecipe:
    input_size: int = 28
    width: int = 64
    steps: int = 400
    batch_size: int = 128
    temperature: float = 0.5
    lr: float = 1e-3
    strength: str = "normal"
    seed: int = 0


@dataclass(frozen=True)
class CriticsRecipe:
    proto: ProtoRecipe = field(default_factory=ProtoRecipe)
    simclr: SimCLRRecipe = field(default_factory=SimCLRRecipe)
    threshold: float = DEFAULT_THRESHOLD

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> CriticsRecipe:
        parts = {}
        for f, sub in (("proto", ProtoRecipe), ("simclr", SimCLRRecipe)):
            raw = dict(d.get(f, {}))
            unknown = set(raw) - {x.name for x in fields(sub)}
            if unknown:
                raise ValueError(f"critics recipe: unknown keys in '{f}': {sorted(unknown)}")
            parts[f] = sub(**raw)
        unknown = set(d) - {"proto", "simclr", "threshold"}
        if unknown:
            raise ValueError(f"critics recipe: unknown keys {sorted(unknown)}")
        return cls(**parts, threshold=float(d.get("threshold", DEFAULT_THRESHOLD)))


# Named recipes. 'quick' exists for tests and smoke runs: it shows the losses fall, nothing more.
RECIPES: dict[str, CriticsRecipe] = {
    "default": CriticsRecipe(),
    "quick": CriticsRecipe(proto=ProtoRecipe(episodes=30, way=20, queries=2, lr_decay_every=1000),
                           simclr=SimCLRRecipe(steps=30, batch_size=64)),
}

Log = Callable[[str], None]


def class_index_table(labels: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, K) image indices of each class (padded by repeating) and (C,) counts; K = the largest class."""
    order = torch.argsort(labels, stable=True)
    counts = torch.bincount(labels, minlength=n_classes)  # (C,)
    if int(counts.min()) < 1:
        raise ValueError(f"every training class needs at least one image; class {int(counts.argmin())} has none")
    starts = torch.cumsum(counts, 0) - counts
    k = int(counts.max())
    slot = torch.arange(k)[None, :] % counts[:, None]  # (C, K): wrap around inside each class
    return order[starts[:, None] + slot], counts


def train_proto(images: torch.Tensor, labels: torch.Tensor, exemplars: torch.Tensor, recipe: ProtoRecipe, *,
                threshold: float = DEFAULT_THRESHOLD, log: Log | None = None) -> tuple[ProtoCritic, list[float]]:
    """Episodic ProtoNet training: support = the way classes' exemplars, queries = their drawings.

    images (N, 48, 48) uint8, labels (N,) in [0, C), exemplars (C, 48, 48). Returns the model (eval mode) and the
    loss of every episode.
    """
    n_classes = len(exemplars)
    if n_classes < recipe.way:
        raise ValueError(f"proto recipe: way={recipe.way} exceeds the {n_classes} training classes")
    g = torch.Generator().manual_seed(recipe.seed)
    torch.manual_seed(recipe.seed)  # weight init
    x = preprocess(images, size=recipe.input_size, threshold=threshold)  # (N, 1, S, S), once
    support_all = preprocess(exemplars, size=recipe.input_size, threshold=threshold)  # (C, 1, S, S)
    table, counts = class_index_table(labels, n_classes)
    net = ProtoCritic(input_size=recipe.input_size, width=recipe.width).train()
    opt = torch.optim.Adam(net.parameters(), lr=recipe.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=recipe.lr_decay_every, gamma=0.5)
    target = torch.arange(recipe.way).repeat_interleave(recipe.queries)  # (way * q,)
    losses = []
    for episode in range(recipe.episodes):
        cls = torch.randperm(n_classes, generator=g)[: recipe.way]  # (way,)
        pick = (torch.rand(recipe.way, recipe.queries, generator=g) * counts[cls, None]).long()  # (way, q)
        queries = table[cls[:, None], pick].reshape(-1)  # (way * q,)
        emb = net(torch.cat([support_all[cls], x[queries]]))  # (way + way * q, 128)
        logits = -torch.cdist(emb[recipe.way :], emb[: recipe.way]).pow(2)  # (way * q, way)
        loss = F.cross_entropy(logits, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if log and (episode + 1) % 50 == 0:
            log(f"proto episode {episode + 1}/{recipe.episodes}  loss {sum(losses[-50:]) / 50:.4f}")
    return net.eval(), losses


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's NT-Xent: each view's positive is the other view of its image; the 2B - 2 others are negatives."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2B, D)
    sim = z @ z.T / temperature  # (2B, 2B)
    sim.fill_diagonal_(float("-inf"))
    b = z1.shape[0]
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(b)])
    return F.cross_entropy(sim, target)


def simclr_views(images: torch.Tensor, recipe: SimCLRRecipe, threshold: float,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two augmented, preprocessed views of uint8 (B, 48, 48) images -> two float (B, 1, S, S)."""
    from models.augment import augment

    x = images.float().div(255.0).unsqueeze(1)  # (B, 1, 48, 48)
    v = augment(torch.cat([x, x]), strength=recipe.strength, generator=generator)  # (2B, 1, 48, 48)
    v = preprocess(v, size=recipe.input_size, threshold=threshold)
    return v[: len(x)], v[len(x) :]


def train_simclr(images: torch.Tensor, recipe: SimCLRRecipe, *, threshold: float = DEFAULT_THRESHOLD,
                 log: Log | None = None) -> tuple[SimCLRCritic, list[float]]:
    """SimCLR on uint8 (N, 48, 48) training images. Returns the model (eval mode) and the loss of every step."""
    if len(images) < recipe.batch_size:
        raise ValueError(f"simclr recipe: batch_size={recipe.batch_size} exceeds the {len(images)} images")
    g = torch.Generator().manual_seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    net = SimCLRCritic(input_size=recipe.input_size, width=recipe.width).train()
    opt = torch.optim.Adam(net.parameters(), lr=recipe.lr)
    losses = []
    for step in range(recipe.steps):
        idx = torch.randint(0, len(images), (recipe.batch_size,), generator=g)
        v1, v2 = simclr_views(images[idx], recipe, threshold, g)
        z = net(torch.cat([v1, v2]))  # one pass: both views share the batch-norm statistics
        loss = nt_xent(z[: len(idx)], z[len(idx) :], recipe.temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if log and (step + 1) % 50 == 0:
            log(f"simclr step {step + 1}/{recipe.steps}  loss {sum(losses[-50:]) / 50:.4f}")
    return net.eval(), losses


def timed(fn, *args, **kwargs):
    """(result, (wall seconds, CPU seconds of this process)) of one call. CPU time says what the recipe costs
    when the machine is shared (wall time then mostly measures the other processes)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, (time.perf_counter() - t0, time.process_time() - c0)


def training_part(imageset, exclude_classes=()) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    """The training images, labels (re-indexed) and exemplars of an ImageSet minus the named classes."""
    names = list(imageset.train_classes)
    unknown = sorted(set(exclude_classes) - set(names))
    if unknown:
        raise ValueError(f"exclude_classes: {unknown[:5]} are not training classes of {imageset.name}")
    keep = torch.tensor([n not in set(exclude_classes) for n in names])  # (C_tr,)
    new_id = torch.cumsum(keep.long(), 0) - 1
    mask = keep[imageset.train_labels]
    return (imageset.train_images[mask], new_id[imageset.train_labels[mask]], imageset.train_exemplars[keep],
            [n for n, k in zip(names, keep.tolist()) if k])


def train_critics(imageset, recipe: CriticsRecipe, *, exclude_classes=(), log: Log | None = None):
    """Train both critics on the training classes (minus exclude_classes), score them on the test classes, and
    return them as Critics with a complete manifest (see evaluation.critics and evaluation.heldout)."""
    from evaluation.critics import Critics
    from evaluation.heldout import build_manifest

    images, labels, exemplars, kept = training_part(imageset, exclude_classes)
    (simclr, simclr_losses), simclr_s = timed(train_simclr, images, recipe.simclr, threshold=recipe.threshold,
                                              log=log)
    (proto, proto_losses), proto_s = timed(train_proto, images, labels, exemplars, recipe.proto,
                                           threshold=recipe.threshold, log=log)
    training = {"simclr_seconds": round(simclr_s[0], 1), "proto_seconds": round(proto_s[0], 1),
                "simclr_cpu_seconds": round(simclr_s[1], 1), "proto_cpu_seconds": round(proto_s[1], 1),
                "load_average": round(os.getloadavg()[0], 2),
                "simclr_loss_first_last": [_mean(simclr_losses[:20]), _mean(simclr_losses[-20:])],
                "proto_loss_first_last": [_mean(proto_losses[:20]), _mean(proto_losses[-20:])],
                "threads": torch.get_num_threads(), "torch": torch.__version__,
                "train_classes": len(kept), "train_images": len(images),
                "excluded_classes": sorted(exclude_classes)}
    manifest = build_manifest(simclr, proto, imageset, recipe, training)
    return Critics(simclr=simclr, proto=proto, manifest=manifest)


def _mean(xs: list[float]) -> float:
    return round(sum(xs) / max(len(xs), 1), 4)
