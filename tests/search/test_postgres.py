"""The study on a real PostgreSQL server (the `postgres` fixture: a loopback port, password authentication): a
wrong password stops the sweep before Ray without showing it, and the study's storage pickles without it. The
kill-and-resume scenario on PostgreSQL is test_resume.py's, run on every storage backend.
"""
from __future__ import annotations


def test_a_wrong_password_stops_before_ray_without_showing_it(postgres, tmp_path, data_dir, critics_dir,
                                                              sweep_file, sweep_cli, monkeypatch):
    wrong = "Wrong-Pass-91c2"
    monkeypatch.setenv("HUMANLIKE_STUDY_DB", postgres.url.replace(postgres.password, wrong))
    path = sweep_file(tmp_path, data_dir, critics_dir, name="pgwrong", storage="env:HUMANLIKE_STUDY_DB")
    done = sweep_cli("run", str(path), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "storage: cannot open the study database (env:HUMANLIKE_STUDY_DB)" in done.stderr
    assert "password authentication failed" in done.stderr
    assert wrong not in done.stdout + done.stderr and postgres.password not in done.stdout + done.stderr
    assert "Started a local Ray instance" not in done.stdout + done.stderr
    assert not (tmp_path / "sweeps").exists()  # refused before anything was written


def test_the_study_database_pickles_without_its_password(postgres, monkeypatch):
    """Ray Tune pickles the searcher (and the study's storage) into its experiment directory."""
    import pickle

    from search.study import StudyDatabase, _with_driver

    monkeypatch.setenv("HUMANLIKE_STUDY_DB", postgres.url)
    storage = StudyDatabase(_with_driver(postgres.url), "env:HUMANLIKE_STUDY_DB")
    data = pickle.dumps(storage)
    assert postgres.password.encode() not in data
    again = pickle.loads(data)  # reads the variable again, and logs in
    assert again.get_all_studies() == storage.get_all_studies()
