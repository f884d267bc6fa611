"""Omniglot (Lake et al. 2015) -> ImageSet, with the paper's split (SPEC part 0 and section 4).

Sources, looked for per split ('background', 'evaluation') in <data_dir>/omniglot, first found wins:
  1. images_<split>.npz + omniglot_characters.csv: the npz repackaging (`images` bool (n, 20, 105, 105) with
     True = paper; row i is the i-th character of the split in Omniglot character-id order; the CSV maps rows to
     `alphabet/characterNN` folders);
  2. images_<split>.zip: the official archive of brendenlake/omniglot, read without extracting;
  3. images_<split>/: the extracted folder. Layout of 2 and 3: images_<split>/<Alphabet>/characterNN/XXXX_YY.png,
     XXXX the global character id, YY the drawer (01-20), each a 105x105 1-bit PNG.
All three give the same raw arrays (`read_omniglot_raw`): bool, True = paper (the npz convention), classes in
character-id order, drawers by YY.

Split: test classes are character01, character02 and character03 of each alphabet (150 classes when all 50
alphabets are present), training classes are all others (1473). Images are inverted (ink = 1), resized
105 -> 48 with antialiasing and stored as uint8 round(255 v), not binarized. Class names are 'Alphabet/characterNN'.
Exemplar of every class = its medoid at 48x48 (see medoid.py); a test class's test_images are its other 19
drawings, a training class keeps all 20 in train_images.
"""
from __future__ import annotations

import csv
import io
import re
import zipfile
import zlib
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .errors import DataError, data_error
from .imageset import ImageSet
from .medoid import assemble
from .raster import ink_to_uint8

SPLITS = ("background", "evaluation")
DRAWERS = 20
RAW_SIZE = 105
TEST_CHARACTERS = frozenset({"character01", "character02", "character03"})
CSV_NAME = "omniglot_characters.csv"
_PNG = re.compile(r"(\d+)_(\d+)\.png")


@dataclass(frozen=True)
class OmniglotRaw:
    """One split as stored: paper bool (n, 20, 105, 105), True = white paper; names 'Alphabet/characterNN'."""

    paper: np.ndarray
    names: tuple[str, ...]
    source: Path


def find_source(root: Path, split: str) -> Path | None:
    """The first existing source of `split` under root (= <data_dir>/omniglot): npz, then zip, then folder."""
    for candidate in (root / f"images_{split}.npz", root / f"images_{split}.zip", root / f"images_{split}"):
        if candidate.exists():
            return candidate
    return None


def read_omniglot_raw(root: str | Path, split: str, *, alphabets: Collection[str] | None = None) -> OmniglotRaw:
    """Read one split's 105x105 drawings from whichever source root holds (see the module docstring).

    alphabets: keep only these alphabets (None = all); lets a caller compare sources on a few alphabets.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown Omniglot split {split!r}; expected one of {SPLITS}")
    root = Path(root)
    source = find_source(root, split)
    if source is None:
        raise data_error(root / f"images_{split}.npz", "missing: no Omniglot npz, zip or folder for the "
                         f"'{split}' split (expected images_{split}.npz, images_{split}.zip or images_{split}/)")
    if source.suffix == ".npz":
        raw = _read_npz(source, root / CSV_NAME, split)
    elif source.suffix == ".zip":
        raw = _read_zip(source, split, alphabets)
    else:
        raw = _read_folder(source, alphabets)
    if alphabets is not None:
        keep = [i for i, n in enumerate(raw.names) if n.split("/")[0] in alphabets]
        raw = OmniglotRaw(raw.paper[keep], tuple(raw.names[i] for i in keep), raw.source)
    return raw


def _read_npz(path: Path, csv_path: Path, split: str) -> OmniglotRaw:
    try:
        with open(path, "rb") as fh, np.load(fh) as archive:  # our handle: numpy leaks its own on a bad zip
            if "images" not in archive.files:
                raise data_error(path, f"no 'images' array (keys: {archive.files})")
            paper = archive["images"]
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise data_error(path, f"unreadable or truncated npz ({e})") from e
    if paper.dtype != np.bool_ or paper.ndim != 4 or paper.shape[1:] != (DRAWERS, RAW_SIZE, RAW_SIZE):
        raise data_error(path, f"'images' must be bool (n, {DRAWERS}, {RAW_SIZE}, {RAW_SIZE}), "
                         f"got {paper.dtype} {paper.shape}")
    names = _csv_names(csv_path, split, len(paper))
    return OmniglotRaw(paper, names, path)


def _csv_names(path: Path, split: str, n: int) -> tuple[str, ...]:
    """'Alphabet/characterNN' for rows 0..n-1 of the split, from omniglot_characters.csv."""
    try:
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("split") == split]
        by_index = {int(r["split_index"]): f"{r['alphabet']}/{r['character']}" for r in rows}
    except FileNotFoundError as e:
        raise data_error(path, "missing: the npz needs it to name its rows") from e
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise data_error(path, f"malformed CSV, need columns split,split_index,alphabet,character ({e!r})") from e
    if sorted(by_index) != list(range(n)):
        raise data_error(path, f"the '{split}' rows do not cover split_index 0..{n - 1} of the npz")
    return tuple(by_index[i] for i in range(n))


def _read_zip(path: Path, split: str, alphabets: Collection[str] | None) -> OmniglotRaw:
    try:
        with zipfile.ZipFile(path) as zf:
            entries = []
            for member in zf.namelist():
                parts = member.split("/")
                if len(parts) == 4 and parts[0] == f"images_{split}" and parts[3].endswith(".png"):
                    entries.append((f"{path}:{member}", parts[1:], lambda m=member: zf.read(m)))
            return _assemble(entries, path, alphabets)
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise data_error(path, f"unreadable or truncated zip ({e})") from e


def _read_folder(path: Path, alphabets: Collection[str] | None) -> OmniglotRaw:
    entries = [(str(p), list(p.relative_to(path).parts), p.read_bytes) for p in path.glob("*/*/*.png")]
    return _assemble(entries, path, alphabets)


def _assemble(entries: Iterable[tuple[str, list[str], Callable[[], bytes]]], source: Path,
              alphabets: Collection[str] | None) -> OmniglotRaw:
    """entries: (label for errors, [alphabet, character, file name], bytes reader) -> OmniglotRaw."""
    chars: dict[tuple[str, str], dict[int, tuple[int, str, Callable[[], bytes]]]] = {}
    for where, (alphabet, character, fname), read in entries:
        if alphabets is not None and alphabet not in alphabets:
            continue
        m = _PNG.fullmatch(fname)
        if m is None:
            raise data_error(where, "file name is not <character id>_<drawer>.png")
        chars.setdefault((alphabet, character), {})[int(m[2])] = (int(m[1]), where, read)
    if not chars:
        raise data_error(source, "no Omniglot PNGs in the <Alphabet>/characterNN/XXXX_YY.png layout")
    order = []
    for (alphabet, character), drawers in chars.items():
        if sorted(drawers) != list(range(1, DRAWERS + 1)):
            raise data_error(source, f"{alphabet}/{character} has drawers {sorted(drawers)}, expected 1..{DRAWERS}")
        ids = {d[0] for d in drawers.values()}
        if len(ids) != 1:
            raise data_error(source, f"{alphabet}/{character} mixes character ids {sorted(ids)}")
        order.append((ids.pop(), alphabet, character))
    order.sort()  # character-id order, the order of the npz rows
    paper = np.empty((len(order), DRAWERS, RAW_SIZE, RAW_SIZE), dtype=bool)
    for row, (_, alphabet, character) in enumerate(order):
        for drawer, (_, where, read) in chars[(alphabet, character)].items():
            paper[row, drawer - 1] = _decode_png(where, read)
    return OmniglotRaw(paper, tuple(f"{a}/{c}" for _, a, c in order), source)


def _decode_png(where: str, read: Callable[[], bytes]) -> np.ndarray:
    """PNG bytes -> bool (105, 105), True = paper (light pixel)."""
    try:
        with Image.open(io.BytesIO(read())) as img:
            grey = np.asarray(img.convert("L"))
    except (OSError, ValueError, zipfile.BadZipFile, zlib.error) as e:  # a bad PNG, or a corrupt zip member
        raise data_error(where, f"not a readable PNG ({e})") from e
    if grey.shape != (RAW_SIZE, RAW_SIZE):
        raise data_error(where, f"image is {grey.shape[::-1]}, expected {RAW_SIZE}x{RAW_SIZE}")
    return grey >= 128


def has_omniglot(root: str | Path) -> bool:
    """True when root (= <data_dir>/omniglot) holds a source for both splits."""
    return all(find_source(Path(root), split) is not None for split in SPLITS)


def load_omniglot(data_dir: str | Path) -> ImageSet:
    """Omniglot from <data_dir>/omniglot as an ImageSet (paper split; see the module docstring)."""
    images, names = [], []
    for split in SPLITS:  # one split at a time: the 105x105 arrays of both together are 0.36 GB
        raw = read_omniglot_raw(Path(data_dir) / "omniglot", split)
        images.append(ink_to_uint8(torch.from_numpy(raw.paper).flatten(0, 1), invert=True))  # (n * 20, 48, 48)
        names += raw.names
    labels = torch.arange(len(names)).repeat_interleave(DRAWERS)      # (N,) drawings grouped by class
    is_test = [n.split("/")[1] in TEST_CHARACTERS for n in names]
    return assemble("omniglot", torch.cat(images), labels, names, is_test)
