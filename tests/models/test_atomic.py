"""models.atomic: a write either lands whole or leaves the old file and no temporary file behind."""
from __future__ import annotations

import pytest

from models.atomic import atomic_open, atomic_write_bytes, atomic_write_text


def test_a_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "sub" / "row.json"  # the folder is created
    atomic_write_text(path, "old\n")
    atomic_write_bytes(path, b"new\n")
    assert path.read_bytes() == b"new\n"
    assert [p.name for p in path.parent.iterdir()] == ["row.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "row.parquet"
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_open(path) as f:
            f.write(b"half of a new file")
            raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["row.parquet"]


def test_text_mode_and_bad_mode(tmp_path):
    with atomic_open(tmp_path / "t.txt", "w") as f:
        f.write("é\n")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "é\n"
    with pytest.raises(ValueError, match="mode must be 'wb' or 'w'"):
        with atomic_open(tmp_path / "x", "a"):
            pass
