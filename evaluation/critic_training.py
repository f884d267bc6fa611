"""Training recipes of the two critics (SPEC sections 5 and 8; issue 11), on a dataset's training classes only.

- Recognizability critic: a cosine classifier over all training classes (batch cross-entropy without label
  smoothing, which costs transfer to new classes; AdamW, linear warm-up then cosine decay), whose L2-normalized
  128-d embedding is then used prototypically:
  20-way 1-shot with the exemplar as support, nearest in squared L2. Per CPU-minute this learns far more than
  DvR's 60-way episodes (every image is contrasted with all 1427 classes at once, not 59), which is what lets the
  critic reach the 2022 framework's accuracy on 2 cores.
- Originality critic: SimCLR, NT-Xent (tau 0.5, DvR) on a 2-layer projection of two views of a drawing, with a
  cosine schedule run until the loss curve is flat (its curve and plateau are in the manifest). Since v4 it moves
  each drawing's ink to the centre of the canvas before its first layer (`centre_ink`): its features then describe
  the shape, not where on the canvas it was drawn, which shifted views alone did not teach them.
Both critics see views drawn from `DrawingViews`: the changes a person's new drawing of the same character makes
without making it another character - a small affine change, a smooth local wobble of the strokes (elastic), and
strokes one pixel thicker or thinner on each edge - then the one evaluation preprocessing
(evaluation.preprocess), so the critics never see anything in training that differs in kind from what they score.
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace

import torch
import torch.nn.functional as F

from evaluation.networks import WIDTHS, ProtoCritic, SimCLRCritic
from evaluation.preprocess import DEFAULT_THRESHOLD, preprocess
from models.regularizers.simclr import nt_xent  # SimCLR's NT-Xent, the one the SimCLR regularizer uses


@dataclass(frozen=True)
class DrawingViews:
    """Ranges of the training views (evaluation.references has the transforms)."""
    degrees: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    shear: float = 8.0
    shift_px: float = 3.0
    elastic_px: float = 1.0     # std of the smooth displacement, pixels at 48 px
    stroke_p: float = 0.5       # probability of strokes one pixel thicker / thinner on each edge


@dataclass(frozen=True)
class ProtoRecipe:
    input_size: int = 48
    widths: tuple[int, ...] = WIDTHS
    steps: int = 7000          # 97.11% held-out (v3); 2600 steps: 96.41% (v2: 2600 steps with smoothing, 95.95%)
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    warmup: int = 100
    label_smoothing: float = 0.0  # 0.1 (v2) costs 0.46 points of held-out accuracy at 2600 steps (docs/critics.md)
    logit_scale: float = 16.0   # cosine classifier: logits = scale * cos(embedding, class weight)
    margin: float = 0.0         # additive cosine margin (CosFace): scale * (cos - margin) for the true class
    # Each training class turned by 90, 180 and 270 degrees counts as three more classes (the Omniglot few-shot
    # practice of Vinyals et al. 2016 and Snell et al. 2017): 4x the classes to contrast, the same images.
    rotation_classes: bool = False
    centre_ink: bool = False    # move each image's ink to the centre first (evaluation.networks.centre_of_ink)
    views: DrawingViews = field(default_factory=DrawingViews)
    seed: int = 0


@dataclass(frozen=True)
class SimCLRRecipe:
    input_size: int = 48
    widths: tuple[int, ...] = WIDTHS
    steps: int = 1100
    # 128 pairs per batch until v4; at 256 (v5) two seeds' human points agree within 0.03 (0.08 at 128), for 2.2x
    # the CPU time (docs/critics.md, "Do two seeds agree?")
    batch_size: int = 256
    temperature: float = 0.5
    lr: float = 2e-3
    weight_decay: float = 1e-5
    warmup: int = 50
    # Compare shapes, not where on the canvas they sit (v4): the 3-px shifts of the views do not teach the
    # features that, and placement was a large share of originality (docs/critics.md, "Placement").
    centre_ink: bool = True
    views: DrawingViews = field(default_factory=DrawingViews)
    seed: int = 0


def _from_dict(cls, raw: dict, where: str):
    raw = dict(raw)
    unknown = set(raw) - {x.name for x in fields(cls)}
    if unknown:
        raise ValueError(f"critics recipe: unknown keys in '{where}': {sorted(unknown)}")
    for k in ("widths", "scale"):
        if k in raw:
            raw[k] = tuple(raw[k])
    if "views" in raw:
        raw["views"] = _from_dict(DrawingViews, raw["views"], f"{where}.views")
    return cls(**raw)


@dataclass(frozen=True)
class CriticsRecipe:
    proto: ProtoRecipe = field(default_factory=ProtoRecipe)
    simclr: SimCLRRecipe = field(default_factory=SimCLRRecipe)
    threshold: float = DEFAULT_THRESHOLD

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> CriticsRecipe:
        unknown = set(d) - {"proto", "simclr", "threshold"}
        if unknown:
            raise ValueError(f"critics recipe: unknown keys {sorted(unknown)}")
        return cls(proto=_from_dict(ProtoRecipe, d.get("proto", {}), "proto"),
                   simclr=_from_dict(SimCLRRecipe, d.get("simclr", {}), "simclr"),
                   threshold=float(d.get("threshold", DEFAULT_THRESHOLD)))

    def with_seed(self, seed: int) -> CriticsRecipe:
        """The same recipe with another seed for both critics (the self-agreement benchmark's second pair)."""
        return replace(self, proto=replace(self.proto, seed=seed), simclr=replace(self.simclr, seed=seed))


# Named recipes. 'default' is what the shipped critics (v5) were trained with (SimCLR 22 and proto 35 CPU-minutes
# on one thread); 'v4', 'v3' and 'v2' the previous shipped critics' (evaluation/critics/omniglot-v4, -v3, -v2;
# v4 = v5 with SimCLR batches of 128; v3 = v4 with the originality critic seeing the drawings where they were
# drawn); 'quick' exists for tests and smoke runs: it shows the losses fall, nothing more.
_V4_SIMCLR = SimCLRRecipe(batch_size=128)
RECIPES: dict[str, CriticsRecipe] = {
    "default": CriticsRecipe(),
    "v4": CriticsRecipe(simclr=_V4_SIMCLR),
    "v3": CriticsRecipe(simclr=replace(_V4_SIMCLR, centre_ink=False)),
    "v2": CriticsRecipe(proto=ProtoRecipe(steps=2600, label_smoothing=0.1),
                        simclr=replace(_V4_SIMCLR, centre_ink=False)),
    "quick": CriticsRecipe(proto=ProtoRecipe(steps=30, batch_size=64, warmup=5, widths=(16, 16, 32, 32)),
                           simclr=SimCLRRecipe(steps=30, batch_size=64, warmup=5, widths=(16, 16, 32, 32))),
    # Measured against issue 11's 97% (docs/critics.md): 96.20% (v2 at 7000 steps: 96.59%); not shipped.
    "rot4": CriticsRecipe(proto=ProtoRecipe(steps=8000, label_smoothing=0.1, rotation_classes=True)),
}

Log = Callable[[str], None]


def recipe_from_arg(arg: str) -> CriticsRecipe:
    """A name of RECIPES, or a YAML file whose fields replace the default recipe's (nested: proto, simclr, views)."""
    if arg in RECIPES:
        return RECIPES[arg]
    if not (arg.endswith((".yaml", ".yml")) and os.path.isfile(arg)):
        raise ValueError(f"--recipe {arg!r}: neither a named recipe ({', '.join(sorted(RECIPES))}) "
                         "nor an existing .yaml file")
    import yaml

    with open(arg) as f:
        raw = yaml.safe_load(f) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"--recipe {arg}: expected a mapping of recipe fields, got {type(raw).__name__}")
    from models.config import merge  # the one nested merge (a config over its preset)

    return CriticsRecipe.from_dict(merge(RECIPES["default"].to_dict(), raw))


def drawing_views(images: torch.Tensor, views: DrawingViews, *, size: int, threshold: float,
                  generator: torch.Generator) -> torch.Tensor:
    """uint8 (B, 48, 48) -> one random view of each, preprocessed: float (B, 1, size, size) in {0, 1}."""
    from evaluation.references import elastic, random_affine, random_stroke_width

    x = images.float().div(255.0).unsqueeze(1)  # (B, 1, 48, 48)
    x = random_affine(x, degrees=views.degrees, scale=views.scale, shear=views.shear, shift_px=views.shift_px,
                      generator=generator)
    if views.elastic_px > 0:
        x = elastic(x, amplitude_px=views.elastic_px, generator=generator)
    if views.stroke_p > 0:
        x = random_stroke_width(x, p=views.stroke_p, generator=generator)
    return preprocess(x, size=size, threshold=threshold)


def warmup_cosine(step: int, *, warmup: int, total: int) -> float:
    """Learning-rate factor: linear warm-up over `warmup` steps, then cosine decay to 0 at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def _optimizer(params, lr: float, weight_decay: float, warmup: int, total: int):
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, warmup=warmup, total=total))
    return opt, sched


def train_proto(images: torch.Tensor, labels: torch.Tensor, recipe: ProtoRecipe, *,
                threshold: float = DEFAULT_THRESHOLD, log: Log | None = None) -> tuple[ProtoCritic, list[float]]:
    """The recognizability critic as a cosine classifier over the training classes.

    images (N, 48, 48) uint8, labels (N,) in [0, C). Returns the model (eval mode) and the loss of every step.
    """
    n_classes = int(labels.max()) + 1
    turns = 4 if recipe.rotation_classes else 1
    g = torch.Generator().manual_seed(recipe.seed)
    torch.manual_seed(recipe.seed)  # weight init
    net = ProtoCritic(input_size=recipe.input_size, widths=recipe.widths, centre_ink=recipe.centre_ink).train()
    net = net.to(memory_format=torch.channels_last)  # measured 1.5x faster on one CPU thread
    weight = torch.nn.Parameter(torch.randn(turns * n_classes, net.metric.out_features) * 0.01)  # class directions
    opt, sched = _optimizer([*net.parameters(), weight], recipe.lr, recipe.weight_decay, recipe.warmup, recipe.steps)

    def step_loss() -> torch.Tensor:
        idx = torch.randint(0, len(images), (recipe.batch_size,), generator=g)
        batch, target = images[idx], labels[idx]
        if turns > 1:
            batch, target = rotation_classes(batch, target, n_classes, generator=g)
        x = drawing_views(batch, recipe.views, size=recipe.input_size, threshold=threshold, generator=g)
        emb = net(x.contiguous(memory_format=torch.channels_last))  # (B, 128), unit norm
        logits = cosine_logits(emb, weight, target, scale=recipe.logit_scale, margin=recipe.margin)
        return F.cross_entropy(logits, target, label_smoothing=recipe.label_smoothing)

    losses = _optimize(step_loss, opt, sched, recipe.steps, "proto", log)
    return net.to(memory_format=torch.contiguous_format).eval(), losses


def cosine_logits(emb: torch.Tensor, weight: torch.Tensor, target: torch.Tensor, *, scale: float,
                  margin: float = 0.0) -> torch.Tensor:
    """scale * cos(embedding, class direction), the true class's cosine lowered by `margin` (CosFace): the
    embedding must beat every other class by the margin, which tightens each class around its direction."""
    cos = emb @ F.normalize(weight, dim=1).T  # (B, C)
    if margin:
        cos = cos - margin * F.one_hot(target, cos.shape[1])
    return scale * cos


def rotation_classes(images: torch.Tensor, labels: torch.Tensor, n_classes: int, *,
                     generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn each image (B, H, W) by a random multiple k of 90 degrees; its class becomes label + k * n_classes."""
    k = torch.randint(0, 4, (len(images),), generator=generator)
    turned = images.clone()
    for q in range(1, 4):
        m = k == q
        if m.any():
            turned[m] = torch.rot90(images[m], q, dims=(1, 2))
    return turned, labels + k * n_classes


def simclr_views(images: torch.Tensor, recipe: SimCLRRecipe, threshold: float,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent views of uint8 (B, 48, 48) images -> two float (B, 1, S, S), preprocessed."""
    v = drawing_views(torch.cat([images, images]), recipe.views, size=recipe.input_size, threshold=threshold,
                      generator=generator)
    return v[: len(images)], v[len(images):]


def train_simclr(images: torch.Tensor, recipe: SimCLRRecipe, *, threshold: float = DEFAULT_THRESHOLD,
                 log: Log | None = None) -> tuple[SimCLRCritic, list[float]]:
    """SimCLR on uint8 (N, 48, 48) training images. Returns the model (eval mode) and the loss of every step."""
    if len(images) < recipe.batch_size:
        raise ValueError(f"simclr recipe: batch_size={recipe.batch_size} exceeds the {len(images)} images")
    g = torch.Generator().manual_seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    net = SimCLRCritic(input_size=recipe.input_size, widths=recipe.widths, centre_ink=recipe.centre_ink).train()
    net = net.to(memory_format=torch.channels_last)
    opt, sched = _optimizer(net.parameters(), recipe.lr, recipe.weight_decay, recipe.warmup, recipe.steps)

    def step_loss() -> torch.Tensor:
        idx = torch.randperm(len(images), generator=g)[: recipe.batch_size]  # distinct images: no false negatives
        v1, v2 = simclr_views(images[idx], recipe, threshold, g)
        z = net(torch.cat([v1, v2]).contiguous(memory_format=torch.channels_last))  # both views share BN stats
        return nt_xent(z[: len(idx)], z[len(idx):], recipe.temperature)

    losses = _optimize(step_loss, opt, sched, recipe.steps, "simclr", log)
    return net.to(memory_format=torch.contiguous_format).eval(), losses


def _optimize(step_loss: Callable[[], torch.Tensor], opt, sched, steps: int, name: str, log: Log | None) -> list[float]:
    """`steps` optimizer steps on step_loss() (a fresh batch each call); the loss of every step, logged every 50."""
    losses = []
    for step in range(steps):
        loss = step_loss()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if log and (step + 1) % 50 == 0:
            log(f"{name} step {step + 1}/{steps}  loss {sum(losses[-50:]) / 50:.4f}")
    return losses


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


def loss_curve(losses: list[float], points: int = 100) -> list[float]:
    """The per-step losses as `points` window means (the manifest's curve)."""
    if not losses:
        return []
    t = torch.tensor(losses, dtype=torch.float64)
    edges = torch.linspace(0, len(t), min(points, len(t)) + 1).round().long().tolist()
    return [round(float(t[a:b].mean()), 4) for a, b in zip(edges, edges[1:])]


def plateau(losses: list[float]) -> dict:
    """How flat the end of a loss curve is: means of the last two tenths and their relative change."""
    n = max(1, len(losses) // 10)
    last, before = _mean(losses[-n:]), _mean(losses[-2 * n : -n] or losses[-n:])
    return {"last_tenth_mean": last, "previous_tenth_mean": before,
            "relative_change": round((before - last) / max(abs(before), 1e-12), 4)}


@torch.no_grad()
def simclr_heldout_loss(simclr, images: torch.Tensor, recipe, threshold: float, *, batches: int = 4,
                        seed: int = 0) -> float:
    """Mean NT-Xent of the trained SimCLR critic on augmented held-out images (fixed seed), eval mode."""
    g = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(batches):
        idx = torch.randperm(len(images), generator=g)[: recipe.batch_size]
        v1, v2 = simclr_views(images[idx], recipe, threshold, g)
        losses.append(nt_xent(simclr(v1), simclr(v2), recipe.temperature).item())
    return sum(losses) / len(losses)


# What a critic's training leaves in the manifest, per critic: taken along when the critic is reused.
TRAINING_RECORD = {
    "simclr": ("simclr_seconds", "simclr_cpu_seconds", "simclr_loss_first_last", "simclr_loss_curve", "simclr_plateau"),
    "proto": ("proto_seconds", "proto_cpu_seconds", "proto_loss_first_last", "proto_loss_curve", "proto_plateau"),
}


def check_reusable(critics, recipe: CriticsRecipe, part: str, dataset: str, exclude_classes) -> None:
    """Raise unless `critics` hold a `part` ('simclr' or 'proto') critic trained with exactly this recipe's part,
    threshold, dataset and excluded classes (then retraining it would give the same network: reusing it saves its
    CPU time). A stored recipe without centre_ink predates it: it did not centre."""
    m = critics.manifest
    cls = SimCLRRecipe if part == "simclr" else ProtoRecipe
    try:
        stored = _from_dict(cls, {"centre_ink": False, **m.get("recipe", {}).get(part, {})}, part)
    except (TypeError, ValueError):
        stored = None
    problems = [what for what, ok in (
        (f"the {part} recipe", stored == getattr(recipe, part)),
        ("the threshold", float(m["threshold"]) == recipe.threshold),
        ("the dataset", m["dataset"] == dataset),
        ("the excluded classes", sorted(m.get("training", {}).get("excluded_classes", [])) == sorted(exclude_classes)),
        ("the training record", all(k in m.get("training", {}) for k in TRAINING_RECORD[part]))) if not ok]
    if problems:
        raise ValueError(f"cannot reuse the {part} critic of {critics.hash}: {', '.join(problems)} differ")


def _trained(part: str, train, *args, **kwargs) -> tuple:
    """(network, training record) of a critic trained now by train(*args, **kwargs) -> (network, losses)."""
    (net, losses), (wall, cpu) = timed(train, *args, **kwargs)
    return net, {f"{part}_seconds": round(wall, 1), f"{part}_cpu_seconds": round(cpu, 1),
                 f"{part}_loss_first_last": [_mean(losses[:20]), _mean(losses[-20:])],
                 f"{part}_loss_curve": loss_curve(losses), f"{part}_plateau": plateau(losses)}


def _reused(critics, part: str) -> tuple:
    """(network, training record) of a reused critic; the record names the critics it came from."""
    record = {k: critics.manifest["training"][k] for k in TRAINING_RECORD[part]}
    record[f"{part}_reused_from"] = critics.hash
    return getattr(critics, part), record


def train_critics(imageset, recipe: CriticsRecipe, *, exclude_classes=(), log: Log | None = None, simclr_from=None,
                  proto_from=None):
    """Train both critics on the training classes (minus exclude_classes), score them on the test classes, and
    return them as Critics with a complete manifest (see evaluation.critics and evaluation.heldout).

    simclr_from / proto_from: critics whose SimCLR / prototypical critic was trained with this very recipe
    (check_reusable checks it); it is taken as is, with its training record, instead of being trained again (the
    manifest names where it came from).
    """
    from evaluation.critics import Critics
    from evaluation.heldout import build_manifest

    images, labels, _, kept = training_part(imageset, exclude_classes)
    for part, source in (("simclr", simclr_from), ("proto", proto_from)):  # before any training
        if source is not None:
            check_reusable(source, recipe, part, imageset.name, exclude_classes)
    if simclr_from is None:
        simclr, simclr_record = _trained("simclr", train_simclr, images, recipe.simclr, threshold=recipe.threshold,
                                         log=log)
    else:
        simclr, simclr_record = _reused(simclr_from, "simclr")
    if proto_from is None:
        proto, proto_record = _trained("proto", train_proto, images, labels, recipe.proto,
                                       threshold=recipe.threshold, log=log)
    else:
        proto, proto_record = _reused(proto_from, "proto")
    training = {**simclr_record, **proto_record, "load_average": round(os.getloadavg()[0], 2),
                "threads": torch.get_num_threads(), "torch": torch.__version__,
                "train_classes": len(kept), "train_images": len(images),
                "excluded_classes": sorted(exclude_classes)}
    manifest = build_manifest(simclr, proto, imageset, recipe, training,
                              simclr_loss=simclr_heldout_loss(simclr, imageset.test_images, recipe.simclr,
                                                              recipe.threshold))
    return Critics(simclr=simclr, proto=proto, manifest=manifest)


def _mean(xs: list[float]) -> float:
    return round(sum(xs) / max(len(xs), 1), 4)
