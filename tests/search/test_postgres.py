"""The study on a real PostgreSQL server (started by the test on a loopback port, password authentication): the
driver is SIGKILLed mid-sweep and run again; the study and the Parquet rows agree trial for trial, and the
password (given only through the environment) appears in no file and no output.
"""
from __future__ import annotations

import signal

import pytest

from search.study import load_study, read_sweep_file
from tests.search.servers import postgres_server
from tests.search.test_driver import _cli
from tests.search.test_resume import Driver, _assert_consistent, _rows
from tests.search.test_trial import critics_dir, sweep_file  # noqa: F401 - critics_dir is a fixture

PASSWORD = "pg-Secret-7f3a9c"
N_TRIALS = 3


@pytest.fixture(scope="module")
def study_db():
    with postgres_server(PASSWORD) as url:
        yield url


@pytest.mark.slow  # two driver runs of a real sweep: about 135 s on the busy 2-core machine
def test_a_sweep_on_postgresql_is_killed_resumed_and_agrees_with_its_rows(study_db, tmp_path, data_dir,
                                                                          critics_dir, monkeypatch):
    monkeypatch.setenv("HUMANLIKE_STUDY_DB", study_db)
    path = sweep_file(tmp_path, data_dir, critics_dir, name="pg", storage="env:HUMANLIKE_STUDY_DB",
                      n_trials=N_TRIALS, max_concurrent=2)
    spec, _ = read_sweep_file(path)

    d = Driver(tmp_path, "run", str(path))
    d.wait_until(lambda: len(_rows(spec)) >= 1, "a first finished trial")
    d.signal(signal.SIGKILL)
    d.finish()
    first = d.text()
    frozen = _rows(spec)
    assert len(load_study(spec).trials) >= 2  # the killed driver left its trials in the database

    d = Driver(tmp_path, "run", str(path))
    assert d.finish() == 0, d.text()
    _assert_consistent(spec, N_TRIALS)
    assert {k: v for k, v in _rows(spec).items() if k in frozen} == frozen  # finished trials did not run again

    status = _cli("status", "pg", "--root", spec.root, cwd=tmp_path)
    assert status.returncode == 0 and f"{N_TRIALS}" in status.stdout, status.stderr
    # The password was only ever in the environment: not in the saved spec, the rows, Tune's files or any output.
    leaked = [str(p) for p in spec.dir().rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()]
    assert leaked == []
    assert PASSWORD not in first + d.text() + status.stdout + status.stderr


def test_a_wrong_password_stops_before_ray_without_showing_it(study_db, tmp_path, data_dir, critics_dir,
                                                              monkeypatch):
    wrong = "Wrong-Pass-91c2"
    monkeypatch.setenv("HUMANLIKE_STUDY_DB", study_db.replace(PASSWORD, wrong))
    path = sweep_file(tmp_path, data_dir, critics_dir, name="pgwrong", storage="env:HUMANLIKE_STUDY_DB")
    done = _cli("run", str(path), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "storage: cannot open the study database (env:HUMANLIKE_STUDY_DB)" in done.stderr
    assert "password authentication failed" in done.stderr
    assert wrong not in done.stdout + done.stderr and PASSWORD not in done.stdout + done.stderr
    assert "Started a local Ray instance" not in done.stdout + done.stderr
    assert not (tmp_path / "sweeps").exists()  # refused before anything was written


def test_the_study_database_pickles_without_its_password(study_db, monkeypatch):
    """Ray Tune pickles the searcher (and the study's storage) into its experiment directory."""
    import pickle

    from search.study import StudyDatabase, _with_driver

    monkeypatch.setenv("HUMANLIKE_STUDY_DB", study_db)
    storage = StudyDatabase(_with_driver(study_db), "env:HUMANLIKE_STUDY_DB")
    data = pickle.dumps(storage)
    assert PASSWORD.encode() not in data
    again = pickle.loads(data)  # reads the variable again, and logs in
    assert again.get_all_studies() == storage.get_all_studies()
