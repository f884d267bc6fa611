"""A sweep on a real two-node Ray cluster on loopback (`ray start` head + worker, token auth), joined with
`humanlike sweep run --address`; the worker node dies (its raylet SIGKILLed) in the middle of a trial, which Tune
starts again on the head from its checkpoint. Slow: about 3 minutes on the shared 2-core machine."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from search.results import read_results
from search.study import check_agreement, load_study, read_sweep_file

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"


def _running_trial(raylet, sweep_dir: Path) -> int | None:
    """The number of the trial a node is training right now (its worker holds the trial's lock file)."""
    for proc in raylet.children(recursive=True):
        try:
            for f in proc.open_files():
                if f.path.startswith(str(sweep_dir)) and f.path.endswith("trial.lock"):
                    return int(Path(f.path).parent.name)
        except Exception:  # noqa: BLE001 - a worker that just ended
            continue
    return None


@pytest.mark.slow
def test_a_sweep_runs_on_both_nodes_and_survives_the_death_of_one(cluster, tmp_path, data_dir, critics_dir,
                                                                  sweep_file):
    path = sweep_file(tmp_path, data_dir, critics_dir, name="two_nodes", n_trials=4, max_concurrent=2,
                      search={"regularizers": {"prototype": {"choices": [0.5, 1.0, 2.0, 4.0]}}},
                      sampler={"name": "grid"}, resources={"cpu": 1})
    spec, _ = read_sweep_file(path)
    head, worker = cluster.raylets()
    head_id, worker_id = cluster.node_id(head), cluster.node_id(worker)
    log = (tmp_path / "driver.log").open("w")
    driver = subprocess.Popen([str(PYTHON), "-m", "search.cli", "sweep", "run", str(path), "--address",
                               cluster.address], cwd=tmp_path, env=cluster.env, stdout=log, stderr=subprocess.STDOUT)
    killed = None
    try:
        # Kill the worker node once it has finished a trial (so both nodes have rows) and is half-way through the
        # next one: its RAE stage checkpointed, no row yet.
        deadline = time.monotonic() + 420
        while killed is None and driver.poll() is None and time.monotonic() < deadline:
            rows = read_results(spec.dir()) if (spec.dir() / "results").is_dir() else None
            done_on_worker = rows is not None and (rows["ray_node"] == worker_id).any()
            number = _running_trial(worker, spec.dir())
            if done_on_worker and number is not None and number not in set(rows["trial"]):
                if (spec.dir() / "trials" / f"{number:05d}" / "run" / "rae.pt").is_file():
                    cluster.kill_node(worker)
                    killed = number
            time.sleep(1.0)
        assert killed is not None, "the worker never ran a second trial: " + (tmp_path / "driver.log").read_text()
        assert driver.wait(timeout=420) == 0, (tmp_path / "driver.log").read_text()
    finally:
        if driver.poll() is None:
            driver.kill()
        log.close()

    output = (tmp_path / "driver.log").read_text()
    assert f"trial {killed}: lost its worker; retry 1/3 from its last checkpoint" in output
    rows = read_results(spec.dir()).set_index("trial")
    study = load_study(spec)
    assert sorted(rows.index) == [0, 1, 2, 3] and set(rows["state"]) == {"COMPLETE"}
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    assert check_agreement(study, spec.dir()) == []
    assert set(rows["ray_node"]) == {head_id, worker_id}  # trials ran on both nodes
    assert rows.loc[killed, "ray_node"] == head_id and rows.loc[killed, "retries"] == 1
    assert (rows.drop(index=killed)["retries"] == 0).all()
