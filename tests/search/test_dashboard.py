"""A finished sweep outside its birthplace: optuna-dashboard opens its journal study, and a copy of its directory
elsewhere reads and reports with paths that exist there.

One real tiny sweep (`humanlike sweep run`, embedded Ray, two one-epoch trials) is the fixture of both tests.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest


REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # a real sweep on Ray (about a minute here)


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory, data_dir, critics_dir, sweep_file) -> Path:
    tmp = tmp_path_factory.mktemp("finished")
    path = sweep_file(tmp, data_dir, critics_dir, name="done", n_trials=2, max_concurrent=2)
    out = subprocess.run([sys.executable, "-m", "search.cli", "sweep", "run", str(path)], cwd=REPO,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    return tmp / "sweeps" / "done"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_optuna_dashboard_serves_the_sweeps_trials(finished_sweep):
    from search.study import load_saved_spec, load_study

    study = load_study(load_saved_spec(finished_sweep))
    port = _free_port()
    dashboard = Path(sys.executable).with_name("optuna-dashboard")
    # The README's command, on a free port.
    server = subprocess.Popen([str(dashboard), str(finished_sweep / "study.journal"), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        studies = None
        while studies is None and time.monotonic() < deadline:
            try:
                studies = _get(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
            except OSError:
                if server.poll() is not None:
                    raise AssertionError(server.stdout.read())
                time.sleep(0.5)
        assert [s["study_name"] for s in studies] == ["done"]
        detail = _get(f"http://127.0.0.1:{port}/api/studies/{studies[0]['study_id']}")
        served = {t["number"]: (t["state"], t.get("values")) for t in detail["trials"]}
        assert served == {t.number: (t.state.name.capitalize(), t.values) for t in study.trials}
        assert len(served) == 2
        # It listens on loopback only (optuna-dashboard's default host).
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
        assert listening.split() and all(a.startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:"))
                                         for a in listening.split()[3::5]), listening
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_copied_sweep_reads_and_reports_from_its_new_place(finished_sweep, tmp_path):
    from search.results import read_results

    stored = pq.read_table(finished_sweep / "results").column("run_dir").to_pylist()
    assert stored == ["trials/00000/run", "trials/00001/run"]  # relative in the files themselves
    copy = tmp_path / "elsewhere" / "done"
    shutil.copytree(finished_sweep, copy)
    moved = finished_sweep.with_name("done-moved")
    finished_sweep.rename(moved)  # the original place is gone
    try:
        df = read_results(copy)
        assert list(df["run_dir"]) == [str(copy / "trials" / f"{n:05d}" / "run") for n in (0, 1)]
        assert all((Path(p) / "ldm.pt").is_file() for p in df["run_dir"])
        env = {**os.environ}
        for command in (["status", "done"], ["best", "done", "--top", "2"]):
            out = subprocess.run([sys.executable, "-m", "search.cli", "sweep", *command, "--root",
                                  str(copy.parent)], cwd=REPO, capture_output=True, text=True, env=env)
            assert out.returncode == 0, out.stderr
            assert str(finished_sweep) not in out.stdout
        assert f"run: {copy / 'trials'}" in out.stdout  # `sweep best` shows where the run is now
        exported = tmp_path / "all.parquet"
        subprocess.run([sys.executable, "-m", "search.cli", "sweep", "export", "done", str(exported), "--root",
                        str(copy.parent)], cwd=REPO, check=True, capture_output=True)
        assert list(pd.read_parquet(exported)["run_dir"]) == stored  # an export stays portable too
    finally:
        moved.rename(finished_sweep)


def test_old_rows_with_absolute_run_dirs_still_read(tmp_path):
    from search.results import read_results, write_trial_row

    sweep = tmp_path / "old"
    write_trial_row(sweep, {"sweep": "old", "trial": 0, "state": "FAIL", "run_dir": "/nowhere/old/trials/00000/run"})
    assert list(read_results(sweep)["run_dir"]) == ["/nowhere/old/trials/00000/run"]
    (sweep / "trials" / "00000" / "run").mkdir(parents=True)  # the sweep has moved here with its trials
    assert list(read_results(sweep)["run_dir"]) == [str(sweep / "trials" / "00000" / "run")]
