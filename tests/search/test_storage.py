"""Sweeps whose results and artifacts live in an S3 bucket (moto's S3 server on loopback), and the mistakes in
storage settings that must stop `humanlike sweep run` before Ray starts.

The bucket sweep runs the real driver as a subprocess, SIGKILLs it when trial 0's RAE checkpoint is in the bucket,
and resumes it from the copy of the sweep file in the bucket with another local scratch directory (another node).
"""
from __future__ import annotations

import hashlib
import os

import pandas as pd
import pytest

from search.errors import SweepError
from search.spec import redact
from search.storage import Location, as_path
from search.study import load_study, read_sweep_file
from tests.search.servers import S3_ENV, s3_server
from tests.search.test_driver import _cli
from tests.search.test_resume import Driver, _assert_consistent, _rows
from tests.search.test_trial import critics_dir, sweep_file  # noqa: F401 - critics_dir is a fixture

BUCKET = "humanlike-test"


@pytest.fixture(scope="module")
def s3_endpoint():
    with pytest.MonkeyPatch.context() as mp:
        for key, value in S3_ENV.items():
            mp.setenv(key, value)
        with s3_server(BUCKET) as endpoint:
            yield endpoint


def _root(endpoint: str, prefix: str) -> str:
    return f"s3://{BUCKET}/{prefix}?endpoint_override={endpoint}&scheme=http&region=us-east-1"


def test_location_reads_and_writes_objects_like_a_path(s3_endpoint):
    d = as_path(_root(s3_endpoint, "unit")) / "sweep"
    assert isinstance(d, Location) and not d.exists()
    (d / "results" / "a.txt").write_text("one")
    assert d.is_dir() and (d / "results" / "a.txt").read_text() == "one"
    assert [f.name for f in (d / "results").glob("*.txt")] == ["a.txt"]
    assert str(d.parent) == _root(s3_endpoint, "unit") and d.name == "sweep"
    assert as_path(str(d / "results")) == d / "results"  # the URI round-trips, query included


@pytest.mark.slow  # two driver runs of a real sweep: about 155 s on the busy 2-core machine
def test_a_sweep_in_a_bucket_is_killed_and_resumes_there(s3_endpoint, tmp_path, data_dir, critics_dir,
                                                         monkeypatch):
    root = _root(s3_endpoint, "team/sweeps")
    journal = tmp_path / "study" / "bucket.journal"  # the study beside the bucket, on a POSIX filesystem
    path = sweep_file(tmp_path, data_dir, critics_dir, name="bucket", root=root, storage=f"journal:{journal}",
                      n_trials=3, max_concurrent=2)
    spec, _ = read_sweep_file(path)
    rae = spec.dir() / "trials" / "00000" / "run" / "rae.pt"

    monkeypatch.setenv("HUMANLIKE_SCRATCH", str(tmp_path / "node-a"))
    d = Driver(tmp_path, "run", str(path))
    d.wait_until(rae.is_file, "trial 0's RAE checkpoint in the bucket")
    d.signal(9)
    d.finish()
    rae_hash = hashlib.sha256(rae.read_bytes()).hexdigest()
    frozen = _rows(spec)

    # Another node: an empty scratch directory, and only the bucket's copy of the sweep file.
    monkeypatch.setenv("HUMANLIKE_SCRATCH", str(tmp_path / "node-b"))
    d = Driver(tmp_path, "resume", "bucket", "--root", root)
    assert d.finish() == 0, d.text()
    assert "trial 0: continuing" in d.text()
    _assert_consistent(spec, 3)
    assert {k: v for k, v in _rows(spec).items() if k in frozen} == frozen  # finished rows were not rewritten
    assert hashlib.sha256(rae.read_bytes()).hexdigest() == rae_hash  # trial 0 went on from the mirrored RAE

    # The rows read back with pandas through pyarrow equal the study, trial for trial.
    results = spec.dir() / "results"
    df = pd.read_parquet(results.path, filesystem=results.filesystem).set_index("trial").sort_index()
    study = load_study(spec)
    assert list(df.index) == [t.number for t in study.trials]
    for t in study.trials:
        assert df.loc[t.number, "state"] == t.state.name
        if t.state.name == "COMPLETE":
            assert df.loc[t.number, "value_0"] == pytest.approx(t.value, rel=1e-12)
        assert df.loc[t.number, "run_dir"] == str(spec.dir() / "trials" / f"{t.number:05d}" / "run")
        assert (as_path(df.loc[t.number, "run_dir"]) / "ldm.pt").is_file()  # artifacts mirrored to the bucket
    assert (spec.dir() / "tune").files(recursive=True), "Tune's experiment state is in the bucket"
    assert not (tmp_path / "sweeps").exists()  # nothing fell back to the working directory
    assert not list((tmp_path / "node-b").rglob("*.pt"))  # finished trials freed the node's scratch space

    out = tmp_path / "all.parquet"
    for args in (("status", "bucket"), ("best", "bucket"), ("export", "bucket", str(out))):
        done = _cli(*args, "--root", root, cwd=tmp_path)
        assert done.returncode == 0, (args, done.stderr)
    assert pd.read_parquet(out).set_index("trial").sort_index()["state"].equals(df["state"])


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


def test_bad_storage_settings_exit_2_before_ray_and_name_the_key(tmp_path, data_dir, critics_dir, monkeypatch):
    monkeypatch.delenv("HUMANLIKE_TEST_UNSET_DB", raising=False)
    monkeypatch.setenv("HUMANLIKE_TEST_NOT_A_URL", "hunter22")
    # Unparsable port: SQLAlchemy's error would quote the URL; the password must not reach the terminal.
    monkeypatch.setenv("HUMANLIKE_TEST_BAD_URL", "postgresql://u:hunter22@127.0.0.1:notaport/db")
    for label, (change, message) in BAD_STORAGE.items():
        path = sweep_file(tmp_path / label, data_dir, critics_dir, name=label, **change)
        done = _cli("run", str(path), cwd=tmp_path)
        assert done.returncode == 2, (label, done.stdout, done.stderr)
        assert message in done.stderr, (label, done.stderr)
        assert "Started a local Ray instance" not in done.stderr + done.stdout, label
        assert "hunter22" not in done.stderr + done.stdout, (label, done.stderr)


def test_an_unreachable_endpoint_or_missing_bucket_stops_before_ray(s3_endpoint, tmp_path, data_dir, critics_dir):
    for label, root, message in (
            ("closed_port", "s3://b/x?endpoint_override=127.0.0.1:9&scheme=http&region=us-east-1", "cannot reach"),
            ("no_such_bucket", _root(s3_endpoint, "x").replace(BUCKET, "missing-bucket"), "does not exist")):
        path = sweep_file(tmp_path / label, data_dir, critics_dir, name=label, root=root,
                          storage=f"journal:{tmp_path / 'j.journal'}")
        done = _cli("run", str(path), cwd=tmp_path)
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


def test_storage_forms_of_the_sweep_file(tmp_path, data_dir, critics_dir):
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
