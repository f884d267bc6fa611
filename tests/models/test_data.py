"""models/data on the real shared data: splits, exemplars, pixel ranges, the three Omniglot sources, QuickDraw
formats, QuickDraw-FS, errors, fingerprint, subset and the verified download."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.data import DataError, ImageSet, load_dataset, read_omniglot_raw, to_float
from models.data.download import fetch_verified
from models.data.load import resolve_data_dir
from models.data.qdfs import load_qdfs
from models.data.quickdraw import load_quickdraw

QDJS = Path("quickdraw_quickdrawjs") / "quickdrawjs_345x100_28.npz"
STROKES = Path("quickdraw_quickdrawjs") / "strokes_first25_simplified"


@pytest.fixture(scope="module")
def qdjs(data_dir) -> dict[str, np.ndarray]:
    with np.load(data_dir / QDJS) as f:
        return dict(zip(f["categories"].tolist(), f["images"]))


def brute_force_medoid(drawings: torch.Tensor) -> int:
    """Independent medoid: summed float64 Euclidean distances with explicit loops (first minimum wins)."""
    x = drawings.numpy().reshape(len(drawings), -1).astype(np.float64) / 255.0
    totals = [sum(np.sqrt(((x[i] - x[j]) ** 2).sum()) for j in range(len(x))) for i in range(len(x))]
    return int(np.argmin(totals))


def drawings(s: ImageSet, part: str, c: int) -> torch.Tensor:
    """The images of class c on side part ('train' or 'test'), in stored order."""
    return getattr(s, f"{part}_images")[getattr(s, f"{part}_labels") == c]


# ---------------------------------------------------------------- Omniglot

def test_omniglot_split_sizes(omniglot):
    s = omniglot
    assert (len(s.train_classes), len(s.test_classes)) == (1473, 150)
    assert s.train_images.shape == (29460, 48, 48) and s.test_images.shape == (150 * 19, 48, 48)
    assert torch.equal(torch.bincount(s.train_labels), torch.full((1473,), 20))
    assert torch.equal(torch.bincount(s.test_labels), torch.full((150,), 19))
    assert s.train_exemplars.shape == (1473, 48, 48) and s.test_exemplars.shape == (150, 48, 48)
    # test = character01-03 of each of the 50 alphabets; names are 'Alphabet/characterNN'
    test_chars = {n.split("/")[1] for n in s.test_classes}
    assert test_chars == {"character01", "character02", "character03"}
    assert len({n.split("/")[0] for n in s.test_classes}) == 50
    assert not {n.split("/")[1] for n in s.train_classes} & test_chars
    assert len(set(s.train_classes) | set(s.test_classes)) == 1623


def test_omniglot_pixels_match_an_independent_resize(omniglot, raw_npz):
    s = omniglot
    for t in (s.train_images, s.test_images, s.train_exemplars):
        assert t.dtype == torch.uint8
    assert (s.train_images == 0).float().mean() > 0.6           # paper = 0 is the majority
    assert s.train_images.max() == 255                           # ink reaches 255
    assert ((s.train_images > 0) & (s.train_images < 255)).any()  # greyscale, not binarized
    # Arcadian/character04 is background row 3 (CSV); its drawer 1 is the first training image. PIL's
    # reducing bilinear filter (the reference torch's antialias mimics) on the inverted float image:
    raw = raw_npz["background"]
    assert raw.names[3] == s.train_classes[0] == "Arcadian/character04"
    paper = raw.paper[3, 0]
    ink = Image.fromarray((~paper).astype(np.float32), mode="F").resize((48, 48), Image.BILINEAR)
    expected = np.clip(np.round(np.asarray(ink) * 255), 0, 255)
    assert np.abs(s.train_images[0].numpy().astype(int) - expected).max() <= 1


def test_omniglot_exemplars_are_medoids(omniglot):
    s = omniglot
    for c in (0, 700, 1472):  # training classes: all 20 drawings, exemplar among them
        group = drawings(s, "train", c)
        assert torch.equal(s.train_exemplars[c], group[brute_force_medoid(group)])
    for c in (0, 77, 149):  # test classes: exemplar + the 19 others are the 20 drawings
        others = drawings(s, "test", c)
        assert not any(torch.equal(o, s.test_exemplars[c]) for o in others)
        group = torch.cat([s.test_exemplars[c:c + 1], others])
        assert brute_force_medoid(group) == 0


ALPHABETS = {"background": ["Arcadian"], "evaluation": ["Angelic"]}


@pytest.fixture(scope="module")
def raw_npz(data_dir):
    """The npz drawings of ALPHABETS, per split (read once: decompressing a split takes a second)."""
    return {split: read_omniglot_raw(data_dir / "omniglot", split, alphabets=a) for split, a in ALPHABETS.items()}


def _write_official(root: Path, split: str, raw, *, as_zip: bool, char_ids: list[int]) -> None:
    """Write raw drawings in brendenlake/omniglot's layout (1-bit PNGs, True = white paper)."""
    files = {}
    for (name, drawers), cid in zip(zip(raw.names, raw.paper), char_ids):
        for d, paper in enumerate(drawers, start=1):
            buf = io.BytesIO()
            Image.fromarray(paper).convert("1").save(buf, format="PNG")
            files[f"images_{split}/{name}/{cid:04d}_{d:02d}.png"] = buf.getvalue()
    if as_zip:
        with zipfile.ZipFile(root / f"images_{split}.zip", "w") as zf:
            for member, data in files.items():
                zf.writestr(member, data)
    else:
        for member, data in files.items():
            (root / member).parent.mkdir(parents=True, exist_ok=True)
            (root / member).write_bytes(data)


def _char_ids(data_dir: Path, split: str, names) -> list[int]:
    with open(data_dir / "omniglot" / "omniglot_characters.csv") as f:
        ids = {f"{r['alphabet']}/{r['character']}": int(r["char_id"]) for r in csv.DictReader(f)
               if r["split"] == split}
    return [ids[n] for n in names]


@pytest.mark.parametrize("as_zip", [True, False], ids=["zip", "folder"])
def test_official_layout_reads_like_the_npz(tmp_path, data_dir, omniglot, raw_npz, as_zip):
    root = tmp_path / "omniglot"
    root.mkdir()
    for split, npz in raw_npz.items():
        assert npz.source.suffix == ".npz" and len(npz.names) > 10
        _write_official(root, split, npz, as_zip=as_zip, char_ids=_char_ids(data_dir, split, npz.names))
        other = read_omniglot_raw(root, split)
        assert other.source.suffix == (".zip" if as_zip else "")
        assert other.names == npz.names
        assert np.array_equal(other.paper, npz.paper)
    # the whole pipeline on the small copy gives the same 48x48 drawings and medoids as the full npz load
    small = load_dataset("omniglot", data_dir=tmp_path)
    assert len(small.test_classes) == 6 and len(small.train_classes) == 26 + 20 - 6
    for part in ("train", "test"):
        names = getattr(omniglot, f"{part}_classes")
        for i, name in enumerate(getattr(small, f"{part}_classes")):
            j = names.index(name)
            assert torch.equal(drawings(small, part, i), drawings(omniglot, part, j))
            assert torch.equal(getattr(small, f"{part}_exemplars")[i], getattr(omniglot, f"{part}_exemplars")[j])


def _omniglot_copy(tmp_path: Path, data_dir: Path) -> Path:
    root = tmp_path / "omniglot"
    root.mkdir()
    for name in ("images_evaluation.npz", "omniglot_characters.csv", "images_background.npz"):
        (root / name).write_bytes((data_dir / "omniglot" / name).read_bytes())
    return root


def test_omniglot_bad_files_name_the_file(tmp_path, data_dir):
    root = _omniglot_copy(tmp_path, data_dir)
    bg = root / "images_background.npz"
    bg.write_bytes(bg.read_bytes()[: bg.stat().st_size // 2])  # truncated
    with pytest.raises(DataError, match="images_background.npz.*truncated"):
        load_dataset("omniglot", data_dir=tmp_path)
    np.savez(bg, pictures=np.zeros((2, 20, 105, 105), bool))  # wrong key
    with pytest.raises(DataError, match=r"images_background.npz: no 'images' array \(keys: \['pictures'\]\)$"):
        load_dataset("omniglot", data_dir=tmp_path)
    np.savez(bg, images=np.zeros((2, 20, 28, 28), bool))  # wrong shape
    with pytest.raises(DataError, match=r"images_background.npz.*\(2, 20, 28, 28\)"):
        load_dataset("omniglot", data_dir=tmp_path)
    bg.unlink()
    with pytest.raises(DataError, match="images_background.npz: missing"):
        load_dataset("omniglot", data_dir=tmp_path)


def test_official_layout_bad_files_name_the_file(tmp_path):
    root = tmp_path / "omniglot"
    folder = root / "images_background" / "Latin" / "character01"
    folder.mkdir(parents=True)
    for d in range(1, 20):  # drawer 20 missing
        Image.new("1", (105, 105), 1).save(folder / f"0683_{d:02d}.png")
    with pytest.raises(DataError, match=r"images_background.*Latin/character01 has drawers"):
        read_omniglot_raw(root, "background")
    (folder / "0683_20.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="0683_20.png: not a readable PNG"):
        read_omniglot_raw(root, "background")
    zpath = root / "images_evaluation.zip"
    member = "images_evaluation/Angelic/character01/0965_01.png"
    with zipfile.ZipFile(zpath, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for d in range(1, 21):
            zf.writestr(member.replace("_01", f"_{d:02d}"), bytes(range(256)) * 40)
    data = bytearray(zpath.read_bytes())
    data[200:260] = bytes(60)  # corrupt the first member's compressed bytes
    zpath.write_bytes(bytes(data))
    with pytest.raises(DataError, match="images_evaluation.zip:images_evaluation/Angelic/character01/0965_01.png"):
        read_omniglot_raw(root, "evaluation")
    zpath.write_bytes(zpath.read_bytes()[:100])  # truncated: no central directory
    with pytest.raises(DataError, match="images_evaluation.zip: unreadable or truncated zip"):
        read_omniglot_raw(root, "evaluation")


# ---------------------------------------------------------------- QuickDraw

def test_quickdraw_from_the_shared_npz(quickdraw, qdjs):
    s = quickdraw
    names = sorted(qdjs)
    assert s.test_classes == tuple(names[::5]) and len(s.test_classes) == 69
    assert s.train_classes == tuple(n for i, n in enumerate(names) if i % 5)
    assert torch.equal(torch.bincount(s.train_labels), torch.full((276,), 100))
    assert torch.equal(torch.bincount(s.test_labels), torch.full((69,), 99))
    assert (s.train_images == 0).float().mean() > 0.5 and s.train_images.max() == 255
    for c in (0, 275):
        group = drawings(s, "train", c)
        assert torch.equal(s.train_exemplars[c], group[brute_force_medoid(group)])
    c = 68
    group = torch.cat([s.test_exemplars[c:c + 1], drawings(s, "test", c)])
    assert brute_force_medoid(group) == 0
    # 28 -> 48 is PIL's bilinear upsampling of the float image (an independent implementation), to 1 level
    cat = s.train_classes.index("cat")
    for k in (0, 50):
        img = Image.fromarray(qdjs["cat"][k].astype(np.float32) / 255, mode="F").resize((48, 48), Image.BILINEAR)
        expected = np.clip(np.round(np.asarray(img) * 255), 0, 255)
        ours = drawings(s, "train", cat)[k].numpy().astype(int)
        assert np.abs(ours - expected).max() <= 1


def test_quickdraw_ndjson_and_npy_files(tmp_path, data_dir, qdjs, quickdraw):
    folder = tmp_path / "quickdraw"
    folder.mkdir()
    strokes = ["cat", "airplane", "bicycle", "tree", "house"]
    bitmaps = ["apple", "zebra", "The Mona Lisa", "cat"]  # 'cat' also as ndjson: the ndjson wins
    for c in strokes:
        lines = (data_dir / STROKES / f"{c}.ndjson").read_text().splitlines()[:12]
        (folder / f"{c}.ndjson").write_text("\n".join(lines) + "\n")
    for c in bitmaps:
        np.save(folder / f"{c}.npy", qdjs[c].reshape(100, 784))
    s = load_quickdraw(tmp_path, max_per_class=10)
    names = sorted(set(strokes) | set(bitmaps))
    assert s.test_classes == tuple(names[::5]) and len(s.train_classes) == len(names) - 2
    assert len(s.train_images) + len(s.test_images) + len(s.test_classes) == 10 * len(names)
    for c in ("apple", "zebra"):  # npy: the same pixels as the shared npz loaded through its own path
        i, j = s.train_classes.index(c), quickdraw.train_classes.index(c)
        assert torch.equal(drawings(s, "train", i), drawings(quickdraw, "train", j)[:10])
    assert s.test_classes == ("The Mona Lisa", "house")
    for c in ("cat", "tree", "bicycle"):  # ndjson strokes = the npz's first drawings, re-rendered at 48
        i, j = s.train_classes.index(c), quickdraw.train_classes.index(c)
        ours = drawings(s, "train", i).float()
        theirs = drawings(quickdraw, "train", j)[:10].float()
        assert np.corrcoef(ours.flatten(), theirs.flatten())[0, 1] > 0.6
        assert 0.7 < ours.mean() / theirs.mean() < 1.3  # similar stroke weight


def test_stroke_rendering_geometry(tmp_path):
    folder = tmp_path / "quickdraw"
    folder.mkdir()
    rec = {"word": "line", "drawing": [[[0, 255], [128, 128]]]}   # one horizontal stroke through the middle
    dot = {"word": "line", "drawing": [[[255], [0]]]}             # a one-point stroke at the top-right corner
    (folder / "line.ndjson").write_text(json.dumps(rec) + "\n" + json.dumps(dot) + "\n")
    from models.data.quickdraw import read_ndjson

    line, corner = read_ndjson(folder / "line.ndjson")
    rows = line.float().sum(dim=1)                                 # ink per row
    assert int(rows.argmax()) in (23, 24) and rows[:20].sum() == 0 and rows[28:].sum() == 0
    assert (line[24] > 0).all()                                    # the line spans the full width
    assert corner[0, 47] > 0 and corner[10:, :].sum() == 0 and corner[:, :38].sum() == 0


def test_quickdraw_bad_files_name_the_file(tmp_path, data_dir):
    folder = tmp_path / "quickdraw"
    folder.mkdir()
    good = (data_dir / STROKES / "cat.ndjson").read_text().splitlines()[:3]
    path = folder / "cat.ndjson"
    path.write_text("\n".join(good[:2] + ['{"word": "cat", "drawing": [[[1, 2], [3]]]']) + "\n")
    with pytest.raises(DataError, match="cat.ndjson:3: "):
        load_quickdraw(tmp_path)
    path.write_text("\n".join(good[:1] + ['{"word": "cat", "draw']) + "\n")
    with pytest.raises(DataError, match="cat.ndjson:2: not a simplified"):
        load_quickdraw(tmp_path)
    path.write_text(json.dumps({"drawing": [[[0, 300], [0, 10]]]}) + "\n")
    with pytest.raises(DataError, match="cat.ndjson:1: coordinates outside"):
        load_quickdraw(tmp_path)
    path.unlink()
    npy = folder / "apple.npy"
    np.save(npy, np.zeros((5, 28, 28), np.uint8))
    with pytest.raises(DataError, match=r"apple.npy: expected uint8 \(N, 784\)"):
        load_quickdraw(tmp_path)
    np.save(npy, np.zeros((50, 784), np.uint8))
    npy.write_bytes(npy.read_bytes()[:1000])
    with pytest.raises(DataError, match="apple.npy: unreadable or truncated"):
        load_quickdraw(tmp_path)
    npy.unlink()
    with pytest.raises(DataError, match="quickdraw: no <category>.ndjson"):
        load_quickdraw(tmp_path)
    folder.rmdir()
    js = tmp_path / QDJS
    js.parent.mkdir()
    np.savez(js, images=np.zeros((3, 4, 28, 28), np.uint8))
    with pytest.raises(DataError, match=r"quickdrawjs_345x100_28.npz: missing keys \['categories'\]"):
        load_dataset("quickdraw", data_dir=tmp_path)


# ---------------------------------------------------------------- QuickDraw-FS

def _qdfs_file(tmp_path: Path, *, compressed: bool = False, n_cls: int = 560, n: int = 3) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    data = (rng.random((n_cls, n, 48, 48)) * 255).astype(np.float32)
    proto = (rng.random((n_cls, 2, 48, 48)) * 255).astype(np.float32)
    path = tmp_path / "quick_draw" / "all_qd_fs_shuffled.npz"
    path.parent.mkdir(exist_ok=True)
    (np.savez_compressed if compressed else np.savez)(path, data=data, prototype=proto)
    return data, proto


@pytest.mark.parametrize("compressed", [False, True], ids=["memmap", "compressed"])
def test_qdfs_small_file(tmp_path, compressed):
    data, proto = _qdfs_file(tmp_path, compressed=compressed)
    s = load_dataset("qdfs", data_dir=tmp_path)
    assert (len(s.train_classes), len(s.test_classes)) == (550, 10)
    assert s.train_images.shape == (550 * 3, 48, 48) and s.test_images.shape == (10 * 3, 48, 48)
    assert torch.equal(s.train_labels, torch.arange(550).repeat_interleave(3))
    rounded = lambda a: torch.from_numpy(np.rint(a).astype(np.uint8))  # noqa: E731
    assert torch.equal(s.test_images[3:6], rounded(data[551]))       # test classes keep all drawings
    assert torch.equal(s.train_exemplars, rounded(proto[:550, 0]))
    assert torch.equal(s.test_exemplars, rounded(proto[550:, 0]))


def test_qdfs_bad_files_name_the_file(tmp_path):
    path = tmp_path / "quick_draw" / "all_qd_fs_shuffled.npz"
    with pytest.raises(DataError, match="all_qd_fs_shuffled.npz: missing"):
        load_qdfs(tmp_path)
    _qdfs_file(tmp_path, n_cls=551, n=1)
    path.write_bytes(path.read_bytes()[:-5000])
    with pytest.raises(DataError, match="all_qd_fs_shuffled.npz: unreadable or truncated"):
        load_qdfs(tmp_path)
    np.savez(path, data=np.zeros((551, 2, 48, 48)), prototypes=np.zeros((551, 1, 48, 48)))
    with pytest.raises(DataError, match="all_qd_fs_shuffled.npz: no 'prototype'"):
        load_qdfs(tmp_path)
    np.savez(path, data=np.zeros((551, 2, 28, 28)), prototype=np.zeros((551, 1, 48, 48)))
    with pytest.raises(DataError, match="all_qd_fs_shuffled.npz: 'data' must be"):
        load_qdfs(tmp_path)
    np.savez(path, data=np.zeros((550, 2, 48, 48)), prototype=np.zeros((550, 1, 48, 48)))
    with pytest.raises(DataError, match="more than 550"):
        load_qdfs(tmp_path)
    np.savez(path, data=np.full((551, 2, 48, 48), 300.0), prototype=np.zeros((551, 1, 48, 48)))
    with pytest.raises(DataError, match="values outside"):
        load_qdfs(tmp_path)


# ---------------------------------------------------------------- ImageSet API

def test_to_float():
    x = torch.tensor([[0, 255], [51, 102]], dtype=torch.uint8).expand(3, 2, 2)
    y = to_float(x)
    assert y.shape == (3, 1, 2, 2) and y.dtype == torch.float32
    assert torch.allclose(y[0, 0], torch.tensor([[0.0, 1.0], [0.2, 0.4]]))
    with pytest.raises(ValueError, match="uint8"):
        to_float(y)


def test_fingerprint_stable_and_sensitive(tmp_path):
    _qdfs_file(tmp_path)
    a, b = load_dataset("qdfs", data_dir=tmp_path), load_dataset("qdfs", data_dir=tmp_path)
    fp = a.fingerprint()
    assert fp == b.fingerprint() and len(fp) == 64 and int(fp, 16) >= 0
    images = a.test_images.clone()
    images[0, 0, 0] ^= 1  # one bit of one pixel
    from dataclasses import replace

    assert replace(a, test_images=images).fingerprint() != fp
    assert replace(a, name="other").fingerprint() != fp
    assert replace(a, test_classes=("x",) + a.test_classes[1:]).fingerprint() != fp
    assert a.fingerprint() == fp  # hashing changed nothing


def test_subset_reindexes_labels(omniglot):
    s = omniglot.subset(train_classes=12, test_classes=5, seed=3)
    assert (len(s.train_classes), len(s.test_classes)) == (12, 5)
    assert set(s.train_labels.tolist()) == set(range(12)) and set(s.test_labels.tolist()) == set(range(5))
    for part in ("train", "test"):
        names = getattr(omniglot, f"{part}_classes")
        kept = getattr(s, f"{part}_classes")
        assert [names.index(n) for n in kept] == sorted(names.index(n) for n in kept)  # original order kept
        for i, name in enumerate(kept):
            j = names.index(name)
            assert torch.equal(drawings(s, part, i), drawings(omniglot, part, j))
            assert torch.equal(getattr(s, f"{part}_exemplars")[i], getattr(omniglot, f"{part}_exemplars")[j])
    again = omniglot.subset(train_classes=12, test_classes=5, seed=3)
    assert again.train_classes == s.train_classes and again.fingerprint() == s.fingerprint()
    assert omniglot.subset(train_classes=12, seed=4).train_classes != s.train_classes
    assert omniglot.subset(train_classes=12, seed=3).test_classes == omniglot.test_classes
    with pytest.raises(ValueError, match="train_classes=1474"):
        omniglot.subset(train_classes=1474)


# ---------------------------------------------------------------- download and directory resolution

def test_fetch_verified_checks_sha256(tmp_path):
    src = tmp_path / "src.zip"
    src.write_bytes(b"omniglot archive stand-in" * 1000)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    dest = tmp_path / "cache" / "omniglot" / "images_background.zip"
    with pytest.raises(DataError, match="sha256 mismatch"):
        fetch_verified(src.as_uri(), dest, sha256="0" * 64)
    assert not dest.exists() and list(dest.parent.iterdir()) == []  # temp file removed
    assert fetch_verified(src.as_uri(), dest, sha256=digest) == dest
    assert dest.read_bytes() == src.read_bytes() and list(dest.parent.iterdir()) == [dest]
    src.unlink()  # an already verified file is not fetched again
    assert fetch_verified(src.as_uri(), dest, sha256=digest) == dest
    with pytest.raises(DataError, match="src.zip: download .* failed"):
        fetch_verified(src.as_uri(), tmp_path / "other.zip", sha256=digest)


def test_data_dir_resolution_never_downloads_into_given_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("HUMANLIKE_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_data_dir(tmp_path / "explicit") == (tmp_path / "explicit", False)
    assert resolve_data_dir() == (tmp_path / "env", False)
    (tmp_path / "env").mkdir()
    with pytest.raises(DataError, match="env/omniglot/images_background.npz: missing"):
        load_dataset("omniglot")
    assert list((tmp_path / "env").iterdir()) == []  # nothing downloaded or created
    monkeypatch.delenv("HUMANLIKE_DATA_DIR")
    assert resolve_data_dir() == (tmp_path / "home" / ".cache" / "humanlike", True)
    with pytest.raises(DataError, match="home/.cache/humanlike/quickdraw: missing: put"):
        load_dataset("quickdraw")
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        load_dataset("mnist")


# --- the decoded copy on disk (models/data/cache.py) -------------------------------------------------------------


def _tensors_equal(a: ImageSet, b: ImageSet) -> bool:
    parts = ("train_images", "train_labels", "train_exemplars", "test_images", "test_labels", "test_exemplars")
    return all(torch.equal(getattr(a, k), getattr(b, k)) for k in parts) and \
        (a.train_classes, a.test_classes) == (b.train_classes, b.test_classes)


def test_the_decoded_copy_is_read_fast_and_equals_the_decode(tmp_path, data_dir, monkeypatch):
    import shutil
    import time

    from models.data.cache import cache_dir
    from models.data.omniglot import load_omniglot

    monkeypatch.setenv("HUMANLIKE_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "data"
    shutil.copytree(data_dir / "omniglot", root / "omniglot")
    t0 = time.perf_counter()
    first = load_dataset("omniglot", data_dir=root)  # decodes and stores
    decode_s = time.perf_counter() - t0
    (stored,) = cache_dir().glob("omniglot-*.npz")
    t0 = time.perf_counter()
    again = load_dataset("omniglot", data_dir=root)
    cached_s = time.perf_counter() - t0
    assert cached_s < 1.0 and cached_s < decode_s / 3, (decode_s, cached_s)
    assert _tensors_equal(again, load_omniglot(root))
    fingerprint = again.fingerprint()
    object.__delattr__(again, "_fingerprint")  # the stored fingerprint agrees with the tensors read back
    assert again.fingerprint() == fingerprint == first.fingerprint()

    # A damaged cache file is decoded again and replaced, never trusted.
    stored.write_bytes(stored.read_bytes()[:1000])
    assert _tensors_equal(load_dataset("omniglot", data_dir=root), first)
    assert stored.stat().st_size > 1_000_000

    # A changed source file is a new key: its fault shows, the old decoded copy does not mask it.
    npz = root / "omniglot" / "images_evaluation.npz"
    npz.write_bytes(npz.read_bytes()[:5000])
    with pytest.raises(DataError, match="images_evaluation.npz: unreadable or truncated npz"):
        load_dataset("omniglot", data_dir=root)
