"""The human points: real drawings scored through exactly the pipeline of a model's samples (SPEC part 0).

- '<dataset>-test': the held-out drawings of the test classes against their exemplars (19 per Omniglot class).
- 'lake2015' (Omniglot only): Lake et al.'s people-drawn new examples of 50 one-shot targets, exemplar = the
  target image, scored with the same critics on those 50 classes.
Both are cached per critics in <critics dir>/human_points.json, keyed by the critics hash (and checked against
the data fingerprint), so a sweep computes them once.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from models.atomic import atomic_write_text
from evaluation.evaluate import evaluate_samples

CACHE_FILE = "human_points.json"
POINT_KEYS = ("originality", "recognizability", "originality_per_set", "n_classes", "n_samples",
              "curve_by_originality_decile")


def test_source(dataset: str) -> str:
    return f"{dataset}-test"


def _point(result: dict, source: str, fingerprint: str) -> dict:
    point = {k: result[k] for k in POINT_KEYS}
    point.update(source=source, data_fingerprint=fingerprint, critics_hash=result["critics_hash"],
                 threshold=result["threshold"])
    return point


def human_point_of(critics, imageset) -> dict:
    """The human point of an ImageSet: its test drawings against its test exemplars."""
    if imageset.name != critics.dataset:
        raise ValueError(f"critics {critics.hash} were trained for {critics.dataset!r}, not {imageset.name!r}")
    result = evaluate_samples(imageset.test_images, imageset.test_exemplars, critics, labels=imageset.test_labels)
    return _point(result, test_source(imageset.name), imageset.fingerprint())


def lake2015_point(critics, data_dir, *, train_classes=None) -> dict:
    """The Lake et al. 2015 human point (Omniglot critics only).

    train_classes: the dataset's training class names; given, the point records how many of the 50 targets the
    critics were trained on (0 with the default recipe, which leaves them out)."""
    from evaluation.lake2015 import load_lake2015

    if critics.dataset != "omniglot":
        raise ValueError(f"the Lake et al. 2015 drawings are Omniglot characters; critics {critics.hash} are "
                         f"for {critics.dataset!r}")
    lake = load_lake2015(data_dir)
    result = evaluate_samples(lake.drawings, lake.exemplars, critics)
    point = _point(result, "lake2015", "")
    if train_classes is not None:
        excluded = set(critics.manifest.get("training", {}).get("excluded_classes", []))
        seen = set(train_classes) - excluded
        point["classes_seen_in_critic_training"] = sum(c in seen for c in lake.classes)
    return point


def _read_cache(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _write_cache(path: Path, cache: dict) -> None:
    try:
        atomic_write_text(path, json.dumps(cache, indent=2, sort_keys=True) + "\n")
    except OSError as e:  # a read-only install: the point is still returned, just not cached
        print(f"warning: could not cache human points in {path}: {e}", file=sys.stderr)


def human_points(critics, imageset, *, data_dir=None, refresh: bool = False) -> dict[str, dict]:
    """{source: point} for the dataset's test drawings and, for Omniglot, Lake et al. 2015; cached per critics.

    A cached point is reused only if it was made with the same critics hash and the same data fingerprint.
    data_dir is needed only for the Lake drawings (None: skip them).
    """
    path = Path(critics.path) / CACHE_FILE if critics.path is not None else None
    cache = _read_cache(path) if path is not None else {}
    mine = cache.get(critics.hash, {})
    fingerprint = imageset.fingerprint()
    points, changed = {}, False
    key = test_source(imageset.name)
    if refresh or mine.get(key, {}).get("data_fingerprint") != fingerprint:
        mine[key], changed = human_point_of(critics, imageset), True
    points[key] = mine[key]
    if imageset.name == "omniglot" and data_dir is not None:
        if refresh or "lake2015" not in mine:
            mine["lake2015"] = lake2015_point(critics, data_dir, train_classes=imageset.train_classes)
            changed = True
        points["lake2015"] = mine["lake2015"]
    if changed and path is not None:
        cache[critics.hash] = mine
        _write_cache(path, cache)
    return points
