"""Sweep directories in an S3 bucket (the `s3_bucket` fixture: moto's S3 server on loopback), and the mistakes in
storage settings that must stop `humanlike sweep run` before Ray starts.

The kill-and-resume scenario with the sweep in a bucket is test_resume.py's, run on every storage backend.
"""
from __future__ import annotations

import os

import pytest

from search.errors import SweepError
from search.spec import redact
from search.storage import Location, as_path
from search.study import read_sweep_file


def test_location_reads_and_writes_objects_like_a_path(s3_bucket):
    d = as_path(s3_bucket.uri("unit")) / "sweep"
    assert isinstance(d, Location) and not d.exists()
    (d / "results" / "a.txt").write_text("one")
    assert d.is_dir() and (d / "results" / "a.txt").read_text() == "one"
    assert [f.name for f in (d / "results").glob("*.txt")] == ["a.txt"]
    assert str(d.parent) == s3_bucket.uri("unit") and d.name == "sweep"
    assert as_path(str(d / "results")) == d / "results"  # the URI round-trips, query included


BAD_STORAGE = {
    "no_bucket": ({"root": "s3://"}, "root: 's3://' names no bucket"),
    "single_slash": ({"root": "s3:/bucket/sweeps"}, "root: 's3:/bucket/sweeps' looks like a URI"),
    "other_scheme": ({"root": "gs://bucket/sweeps"}, "root: unsupported storage scheme 'gs://'"),
    "unknown_option": ({"root": "s3://bucket/sweeps?endpoint=127.0.0.1:1"}, "root: unknown S3 option 'endpoint'"),
    "keys_in_uri": ({"root": "s3://AKIA:hunter22@bucket/sweeps"}, "root: credentials in the URI"),
    "journal_on_s3": ({"root": "s3://bucket/sweeps?region=us-east-1"},
                      "storage: the study cannot be a journal file in s3://bucket/sweeps"),
    "journal_path_on_s3": ({"storage": "journal:s3://bucket/x.journal"}, "a journal file needs a local or shared"),
    "password_in_file": ({"storage": "postgresql://u:hunter22@db.example/optuna"}, "holds a password"),
    "unset_env": ({"storage": "env:HUMANLIKE_TEST_UNSET_DB"},
                  "storage: environment variable HUMANLIKE_TEST_UNSET_DB is not set"),
    "env_not_a_url": ({"storage": "env:HUMANLIKE_TEST_NOT_A_URL"}, "holds no database URL"),
    "bad_db_url": ({"storage": "env:HUMANLIKE_TEST_BAD_URL"}, "storage: cannot open the study database"),
}


def test_bad_storage_settings_exit_2_before_ray_and_name_the_key(tmp_path, data_dir, critics_dir, sweep_file,
                                                                  sweep_cli, monkeypatch):
    monkeypatch.delenv("HUMANLIKE_TEST_UNSET_DB", raising=False)
    monkeypatch.setenv("HUMANLIKE_TEST_NOT_A_URL", "hunter22")
    # Unparsable port: SQLAlchemy's error would quote the URL; the password must not reach the terminal.
    monkeypatch.setenv("HUMANLIKE_TEST_BAD_URL", "postgresql://u:hunter22@127.0.0.1:notaport/db")
    for label, (change, message) in BAD_STORAGE.items():
        path = sweep_file(tmp_path / label, data_dir, critics_dir, name=label, **change)
        done = sweep_cli("run", str(path), cwd=tmp_path)
        assert done.returncode == 2, (label, done.stdout, done.stderr)
        assert message in done.stderr, (label, done.stderr)
        assert "Started a local Ray instance" not in done.stderr + done.stdout, label
        assert "hunter22" not in done.stderr + done.stdout, (label, done.stderr)


def test_an_unreachable_endpoint_or_missing_bucket_stops_before_ray(s3_bucket, tmp_path, data_dir, critics_dir,
                                                                     sweep_file, sweep_cli):
    for label, root, message in (
            ("closed_port", "s3://b/x?endpoint_override=127.0.0.1:9&scheme=http&region=us-east-1", "cannot reach"),
            ("no_such_bucket", s3_bucket.uri("x").replace(s3_bucket.name, "missing-bucket"), "does not exist")):
        path = sweep_file(tmp_path / label, data_dir, critics_dir, name=label, root=root,
                          storage=f"journal:{tmp_path / 'j.journal'}")
        done = sweep_cli("run", str(path), cwd=tmp_path)
        assert done.returncode == 2 and f"root: " in done.stderr and message in done.stderr, (label, done.stderr)
        assert "Started a local Ray instance" not in done.stderr + done.stdout, label
    assert not (tmp_path / "j.journal").exists()  # nothing was written


def test_redact_hides_passwords_in_urls_and_quoted_alone():
    url = "postgresql+psycopg://alice:s3cr%40t!@db:5432/optuna"
    text = f"ArgumentError: could not parse {url}; password was s3cr%40t!"
    out = redact(text, url)
    assert "s3cr" not in out and "postgresql+psycopg://alice:***@db:5432/optuna" in out
    assert redact("no url here") == "no url here"
    with pytest.raises(SweepError, match="holds a password"):
        from search.spec import _storage

        _storage(url)
    assert os.environ.get("HUMANLIKE_TEST_UNSET_DB") is None


def test_storage_forms_of_the_sweep_file(tmp_path, data_dir, critics_dir, sweep_file):
    from search.spec import journal_path, resolve_storage

    root = "s3://bucket/team/sweeps?region=us-east-1&endpoint_override=127.0.0.1:1&scheme=http"
    spec, raw = read_sweep_file(sweep_file(tmp_path, data_dir, critics_dir, name="forms", root=root,
                                           storage="journal:/nfs/studies/forms.journal",
                                           warm_start={"parquet": "s3://bucket/team/sweeps/older?region=us-east-1"}))
    assert spec.dir() == Location("s3://bucket/team/sweeps/forms?region=us-east-1&endpoint_override=127.0.0.1:1"
                                  "&scheme=http")
    assert str(journal_path(spec)) == "/nfs/studies/forms.journal" and resolve_storage(spec) is None
    assert raw["root"] == root  # the saved copy keeps the URI as written (no secrets can be in it)
    local, _ = read_sweep_file(sweep_file(tmp_path / "l", data_dir, critics_dir, name="local"))
    assert journal_path(local) == local.dir() / "study.journal" and not isinstance(local.dir(), Location)
    fileuri, _ = read_sweep_file(sweep_file(tmp_path / "f", data_dir, critics_dir, name="f",
                                            root=f"file://{tmp_path}/sw"))
    assert fileuri.dir() == tmp_path / "sw" / "f"
