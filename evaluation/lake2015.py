"""Lake et al. (2015) 'generate new exemplars' drawings: a second human reference for Omniglot (SPEC part 0).

Layout (<data_dir>/omniglot_human_new_exemplars_lake2015, see the data README):
    targets_to_omniglot.csv                          target_index, target_file, char_id, drawer_index, split,
                                                     alphabet, character, people_files (';'-separated)
    judge_new_instances/target_images/handwritten{n}.png   the 50 one-shot targets, 105x105 1-bit, black ink
    judge_new_instances/img_people/image_c{n}_r{k}.png     9 new drawings per target, 210x210 RGB, black on white
Every image becomes a uint8 48x48 ink map like the Omniglot loader's (greyscale, invert so ink = 255, antialiased
resize); the target image is the exemplar of its class. Class names are 'Alphabet/characterNN', the Omniglot
ImageSet's names, so the critics' training can leave these characters out.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

FOLDER = "omniglot_human_new_exemplars_lake2015"
CSV_FILE = "targets_to_omniglot.csv"


@dataclass(frozen=True, eq=False)
class Lake2015:
    drawings: torch.Tensor      # (50, 9, 48, 48) uint8, ink = 255
    exemplars: torch.Tensor     # (50, 48, 48) uint8: the target images
    classes: tuple[str, ...]    # 'Alphabet/characterNN' of each target


def lake2015_dir(data_dir: str | Path) -> Path:
    d = Path(data_dir) / FOLDER
    if not (d / CSV_FILE).is_file():
        raise FileNotFoundError(f"{d / CSV_FILE}: missing; the Lake et al. 2015 human drawings are expected in "
                                f"<data_dir>/{FOLDER} (see the data README)")
    return d


def read_targets(data_dir: str | Path) -> list[dict]:
    """The CSV rows, in target order; each row's people_files split into a list."""
    path = lake2015_dir(data_dir) / CSV_FILE
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    need = {"target_index", "target_file", "alphabet", "character", "people_files"}
    if not rows or not need <= set(rows[0]):
        raise ValueError(f"{path}: expected columns {sorted(need)}, got {sorted(rows[0]) if rows else 'no rows'}")
    rows.sort(key=lambda r: int(r["target_index"]))
    for r in rows:
        r["people_files"] = [p for p in r["people_files"].split(";") if p]
    return rows


def lake2015_classes(data_dir: str | Path) -> tuple[str, ...]:
    return tuple(f"{r['alphabet']}/{r['character']}" for r in read_targets(data_dir))


def _paper_images(paths: list[Path]) -> np.ndarray:
    """Greyscale images with paper = 1 as float (n, H, W); all must share one size."""
    from PIL import Image

    out = []
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"{p}: missing (listed in {CSV_FILE})")
        with Image.open(p) as im:
            out.append(np.asarray(im.convert("L"), dtype=np.float32) / 255.0)
    return np.stack(out)


def load_lake2015(data_dir: str | Path) -> Lake2015:
    from models.data.raster import ink_to_uint8  # the Omniglot loader's resize rule: same pixels for the targets

    root = lake2015_dir(data_dir) / "judge_new_instances"
    rows = read_targets(data_dir)
    per_target = {len(r["people_files"]) for r in rows}
    if len(per_target) != 1:
        raise ValueError(f"{CSV_FILE}: targets have different numbers of drawings {sorted(per_target)}")
    targets = _paper_images([root / "target_images" / r["target_file"] for r in rows])  # (50, 105, 105)
    people = _paper_images([root / "img_people" / f for r in rows for f in r["people_files"]])  # (450, 210, 210)
    k = per_target.pop()
    return Lake2015(drawings=ink_to_uint8(people, invert=True).view(len(rows), k, 48, 48),
                    exemplars=ink_to_uint8(targets, invert=True),
                    classes=tuple(f"{r['alphabet']}/{r['character']}" for r in rows))
