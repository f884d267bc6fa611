"""QuickDraw-FS, the paper's all_qd_fs_shuffled.npz (SPEC section 4; not public, read when a user has it).

File: <data_dir>/quick_draw/all_qd_fs_shuffled.npz with `data` (n_cls, n_draw, 48, 48) and `prototype`
(n_cls, n_proto, 48, 48), floats 0..255 with ink high (LM divides by 255 and does not invert).
Rule: classes 0-549 are training classes, classes 550..n_cls-1 test classes (115 in the paper's file, n_cls =
665); the first min(500, n_draw) drawings of each class are used, so a file with fewer than 500 drawings per
class (n_draw >= 1) is accepted and used whole; the exemplar is prototype[c, 0], a separate image, so test classes
keep all their drawings as test_images. Values are rounded to uint8 (values outside [0, 255] are an error).
An uncompressed npz member (np.savez; the real file is ~3 GB) is memory-mapped and only the used drawings are
read; a compressed one is read whole.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from .errors import DataError, data_error
from .imageset import SIZE, ImageSet
from .medoid import assemble

FILE = Path("quick_draw") / "all_qd_fs_shuffled.npz"
N_TRAIN = 550
PER_CLASS = 500
CLASS_CHUNK = 16  # classes converted to uint8 at once


def npz_member(path: Path, key: str) -> np.ndarray:
    """Array `key` of an npz: memory-mapped when stored uncompressed, else read into memory."""
    with zipfile.ZipFile(path) as zf:
        name = f"{key}.npy"
        if name not in zf.namelist():
            raise data_error(path, f"no '{key}' array (members: {zf.namelist()})")
        info = zf.getinfo(name)
        if info.compress_type != zipfile.ZIP_STORED:
            with zf.open(info) as f:
                return np.lib.format.read_array(f)
        with zf.open(info) as f:  # read the .npy header to find where the raw array starts
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(f)
            header_len = f.tell()
    with open(path, "rb") as raw:  # the local file header precedes the member's bytes
        raw.seek(info.header_offset)
        local = raw.read(30)
        data_start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + \
            int.from_bytes(local[28:30], "little")
    return np.memmap(path, dtype=dtype, mode="r", offset=data_start + header_len, shape=shape,
                     order="F" if fortran else "C")


def _to_uint8(array: np.ndarray, path: Path, key: str) -> torch.Tensor:
    """(n, k, 48, 48) 0..255 numbers -> uint8 tensor (n * k, 48, 48), converted CLASS_CHUNK classes at a time."""
    out = np.empty(array.shape, dtype=np.uint8)
    for start in range(0, len(array), CLASS_CHUNK):
        chunk = np.asarray(array[start:start + CLASS_CHUNK], dtype=np.float32)
        if not np.isfinite(chunk).all() or chunk.min() < -0.5 or chunk.max() > 255.5:
            raise data_error(path, f"'{key}' classes {start}..{start + len(chunk) - 1}: values outside [0, 255]")
        out[start:start + CLASS_CHUNK] = np.clip(np.rint(chunk), 0, 255)
    return torch.from_numpy(out).flatten(0, 1)


def load_qdfs(data_dir: str | Path) -> ImageSet:
    """QuickDraw-FS from <data_dir>/quick_draw/all_qd_fs_shuffled.npz (see the module docstring)."""
    path = Path(data_dir) / FILE
    if not path.is_file():
        raise data_error(path, "missing: QuickDraw-FS (all_qd_fs_shuffled.npz, Boutin et al.) is not public; "
                         "place your copy at this path")
    try:
        data, proto = npz_member(path, "data"), npz_member(path, "prototype")
        for key, a in (("data", data), ("prototype", proto)):
            if a.ndim != 4 or a.shape[2:] != (SIZE, SIZE) or a.shape[1] < 1 or a.dtype.kind not in "fiu":
                raise data_error(path, f"'{key}' must be numbers (n_cls, n, {SIZE}, {SIZE}), got {a.dtype} {a.shape}")
        if len(data) != len(proto) or len(data) <= N_TRAIN:
            raise data_error(path, f"'data' and 'prototype' must have the same number of classes, more than "
                             f"{N_TRAIN}; got {len(data)} and {len(proto)}")
        k = min(PER_CLASS, data.shape[1])
        images = _to_uint8(data[:, :k], path, "data")                    # (n_cls * k, 48, 48)
        exemplars = _to_uint8(proto[:, :1], path, "prototype")           # (n_cls, 48, 48)
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise data_error(path, f"unreadable or truncated npz ({e})") from e
    n_cls = len(data)
    labels = torch.arange(n_cls).repeat_interleave(k)                    # (N,)
    names = [f"class{c:03d}" for c in range(n_cls)]  # the file has no category names: its class index
    is_test = [c >= N_TRAIN for c in range(n_cls)]
    return assemble("qdfs", images, labels, names, is_test, exemplars=exemplars)
