"""Fractional GPU requests pack trials: on a Ray with one logical GPU, trials asking a quarter of it run four at a
time, trials asking half of it two at a time. No CUDA here: the trials train on the CPU although Ray assigned them
a GPU. Real tiny trials through run_sweep; slow (about 2-3 minutes on the shared 2-core machine)."""
from __future__ import annotations

import pandas as pd
import pytest

from search.driver import run_sweep
from search.results import read_results
from search.study import read_sweep_file


@pytest.fixture(scope="module")
def one_logical_gpu():
    import ray

    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _max_overlap(rows: pd.DataFrame) -> int:
    """The largest number of trials whose [started_at, finished_at) intervals share a moment."""
    events = sorted([(t, 1) for t in rows["started_at"]] + [(t, -1) for t in rows["finished_at"]],
                    key=lambda e: (e[0], e[1]))  # an end before a start at the same instant: no overlap
    live = most = 0
    for _, step in events:
        live += step
        most = max(most, live)
    return most


def _sweep(sweep_file, tmp_path, data_dir, critics, name: str, gpu: float, n: int):
    weights = [0.5, 1.0, 2.0, 4.0][:n]
    path = sweep_file(tmp_path, data_dir, critics, name=name, n_trials=n, max_concurrent=8,
                      search={"regularizers": {"prototype": {"choices": weights}}}, sampler={"name": "grid"},
                      resources={"cpu": 0.25, "gpu": gpu})
    spec, raw = read_sweep_file(path)
    outcome = run_sweep(spec, raw, echo=lambda line: None)
    assert outcome.problems == [] and outcome.counts["COMPLETE"] == n, outcome
    return read_results(spec.dir())


@pytest.mark.slow
def test_quarter_gpu_trials_run_four_at_a_time_and_half_gpu_trials_two(one_logical_gpu, tmp_path, data_dir,
                                                                      critics_dir, sweep_file):
    quarter = _sweep(sweep_file, tmp_path, data_dir, critics_dir, "quarter", 0.25, 4)
    assert _max_overlap(quarter) == 4  # all four at once: 4 x 0.25 of the one GPU (and 4 x 0.25 CPU of 2)
    assert quarter["started_at"].max() < quarter["finished_at"].min()
    half = _sweep(sweep_file, tmp_path, data_dir, critics_dir, "half", 0.5, 3)
    assert _max_overlap(half) == 2  # the GPU, not the CPUs (3 x 0.25 would fit), keeps the third one waiting
