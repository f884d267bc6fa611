"""Trained critics as one object: both networks, their preprocessing, and the manifest that names them.

On disk a critics directory holds
    critics.pt      {'version', 'arch': {'simclr': {...}, 'proto': {...}}, 'simclr': state_dict, 'proto': state_dict}
                    (tensors, ints and strings only: loads with torch.load(weights_only=True))
    manifest.json   schema_version, dataset, critics_hash, threshold, originality normalizer s, recipe, data
                    fingerprint, held-out scores, training times (see `build_manifest`)
The critics hash is a content hash of everything that changes a score (weights, input sizes, threshold, s, the
dataset name), so every evaluation result can name the critics it used and two results are comparable exactly
when their hashes agree. Shipped critics live in evaluation/critics/<dataset>/.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from models.atomic import atomic_open, atomic_write_text
from evaluation.networks import ProtoCritic, SimCLRCritic, build_critic, embed_in_batches
from evaluation.preprocess import preprocess
from models.device import module_device

CHECKPOINT_VERSION = 2   # 2: arch dicts carry 'version' and 'widths' (evaluation.networks); 1 still loads
MANIFEST_VERSION = 2     # 2: adds random-support accuracy, quadrant gradient masses, loss curves; 1 still loads
READABLE_VERSIONS = (1, 2)
WEIGHTS_FILE = "critics.pt"
MANIFEST_FILE = "manifest.json"
SHIPPED_DIR = Path(__file__).resolve().parent / "critics"


class CriticsError(ValueError):
    """A critics directory that is missing, incomplete, or inconsistent with its manifest."""


@dataclass(frozen=True, eq=False)
class Critics:
    simclr: SimCLRCritic          # eval mode
    proto: ProtoCritic            # eval mode
    manifest: dict
    path: Path | None = None

    @property
    def hash(self) -> str:
        return self.manifest["critics_hash"]

    @property
    def dataset(self) -> str:
        return self.manifest["dataset"]

    @property
    def threshold(self) -> float:
        return float(self.manifest["threshold"])

    @property
    def normalizer(self) -> float:
        """The fixed originality unit s (SPEC part 0), computed on the human reference set at training time."""
        return float(self.manifest["originality"]["normalizer"])

    def arch(self) -> dict:
        return {"simclr": self.simclr.arch(), "proto": self.proto.arch()}

    def on(self, device: torch.device) -> Critics:
        """These critics computing on `device`: themselves if they are there, else a moved copy (a process's
        cached critics stay where they are)."""
        if module_device(self.simclr) == device:
            return self
        return dataclasses.replace(self, simclr=copy.deepcopy(self.simclr).to(device),
                                   proto=copy.deepcopy(self.proto).to(device))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Originality features: any images (B, [1,] H, W) -> (B, 256) on the CPU, through the one preprocessing,
        computed on the critics' device."""
        x = preprocess(images.to(module_device(self.simclr)), size=self.simclr.input_size, threshold=self.threshold)
        return embed_in_batches(self.simclr.features, x).cpu()

    def embeddings(self, images: torch.Tensor) -> torch.Tensor:
        """Recognizability metric embeddings: any images -> (B, 128) on the CPU, computed on the critics' device."""
        x = preprocess(images.to(module_device(self.proto)), size=self.proto.input_size, threshold=self.threshold)
        return embed_in_batches(self.proto, x).cpu()

    def exemplar_outputs(self, exemplars: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features, embeddings) of the exemplars: what evaluation.evaluate.evaluate_samples scores against."""
        return self.features(exemplars), self.embeddings(exemplars)


def critics_hash(simclr_state: dict, proto_state: dict, *, dataset: str, threshold: float, normalizer: float,
                 arch: dict) -> str:
    """16 hex digits of a sha256 over the weights and every setting that changes a score."""
    h = hashlib.sha256()
    meta = {"dataset": dataset, "threshold": float(threshold), "normalizer": round(float(normalizer), 12),
            "arch": arch}
    h.update(json.dumps(meta, sort_keys=True).encode())
    for prefix, state in (("simclr", simclr_state), ("proto", proto_state)):
        for name in sorted(state):
            t = state[name].detach().cpu().contiguous()
            h.update(f"{prefix}.{name}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def save_critics(critics: Critics, out_dir: str | Path) -> Path:
    """Write critics.pt and manifest.json into out_dir (created); files are replaced atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = {"version": CHECKPOINT_VERSION, "arch": critics.arch(),
            "simclr": critics.simclr.state_dict(), "proto": critics.proto.state_dict()}
    with atomic_open(out / WEIGHTS_FILE) as f:
        torch.save(ckpt, f)
    atomic_write_text(out / MANIFEST_FILE, json.dumps(critics.manifest, indent=2, sort_keys=True) + "\n")
    return out


def resolve_critics_dir(dataset_or_path: str | Path) -> Path:
    """A directory as given, else the shipped critics of that dataset name."""
    p = Path(dataset_or_path)
    if p.is_dir():
        return p
    shipped = SHIPPED_DIR / str(dataset_or_path)
    if shipped.is_dir():
        return shipped
    available = sorted(d.name for d in SHIPPED_DIR.glob("*") if (d / MANIFEST_FILE).is_file())
    raise FileNotFoundError(
        f"no critics at {dataset_or_path!r}: not a directory, and no shipped critics of that name "
        f"(shipped: {available}); train them with `humanlike critics train --dataset NAME`")


def load_critics(dataset_or_path: str | Path) -> Critics:
    """Both critics and their manifest, from a critics directory or a dataset name (shipped critics).

    The stored hash is recomputed from the weights and settings; a mismatch (weights replaced, manifest edited)
    is an error, since results would otherwise name critics they were not computed with.
    """
    d = resolve_critics_dir(dataset_or_path)
    wpath, mpath = d / WEIGHTS_FILE, d / MANIFEST_FILE
    for p in (wpath, mpath):
        if not p.is_file():
            raise CriticsError(f"{p}: missing (a critics directory holds {WEIGHTS_FILE} and {MANIFEST_FILE})")
    try:
        manifest = json.loads(mpath.read_text())
    except json.JSONDecodeError as e:
        raise CriticsError(f"{mpath}: not valid JSON ({e})") from e
    if manifest.get("schema_version") not in READABLE_VERSIONS:
        raise CriticsError(f"{mpath}: schema_version {manifest.get('schema_version')!r}, "
                           f"this code reads {list(READABLE_VERSIONS)}")
    ckpt = torch.load(wpath, map_location="cpu", weights_only=True)
    if ckpt.get("version") not in READABLE_VERSIONS:
        raise CriticsError(f"{wpath}: checkpoint version {ckpt.get('version')!r}, "
                           f"this code reads {list(READABLE_VERSIONS)}")
    simclr = build_critic(SimCLRCritic, ckpt["arch"]["simclr"])
    proto = build_critic(ProtoCritic, ckpt["arch"]["proto"])
    simclr.load_state_dict(ckpt["simclr"])
    proto.load_state_dict(ckpt["proto"])
    expected = critics_hash(ckpt["simclr"], ckpt["proto"], dataset=manifest["dataset"],
                            threshold=manifest["threshold"], normalizer=manifest["originality"]["normalizer"],
                            arch=ckpt["arch"])
    if expected != manifest.get("critics_hash"):
        raise CriticsError(f"{d}: the weights and manifest do not match (manifest says critics_hash "
                           f"{manifest.get('critics_hash')!r}, the content hashes to {expected!r})")
    return Critics(simclr=simclr.eval(), proto=proto.eval(), manifest=manifest, path=d)
