"""What the driver relies on when a trial runs out of GPU memory, checked on a real (local) Ray Tune without a GPU:
an exception raised by a trial is retried by FailureConfig, and the trial's error file, when Tune announces the
retry, names torch's OutOfMemoryError (search/driver.py StudySearcher.on_retry reads it)."""
from __future__ import annotations

from pathlib import Path

import pytest

from search.driver import _last_failure
from search.gpu import mentions_out_of_memory


def _trainable(config):
    import torch
    from ray import tune

    marker = Path(config["marker"])
    if not marker.exists():  # the first attempt: the GPU's neighbours took the memory
        marker.write_text("1")
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 512.00 MiB")
    tune.report({"attempt_ok": 1, "retries": config.get("retries", 0)})


def test_tune_retries_an_out_of_memory_trial_and_its_error_file_says_so(tmp_path):
    import ray
    from ray import tune

    seen: list[str] = []

    class Recover(tune.Callback):
        def on_trial_recover(self, iteration, trials, trial, **info):
            seen.append(_last_failure(trial.error_file))
            trial.config["retries"] = len(seen)  # as the driver does: the restarted trial receives it

    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        tuner = tune.Tuner(_trainable, param_space={"marker": str(tmp_path / "marker")},
                           run_config=tune.RunConfig(storage_path=str(tmp_path / "tune"), verbose=0,
                                                     callbacks=[Recover()],
                                                     failure_config=tune.FailureConfig(max_failures=2)))
        (result,) = tuner.fit()
    finally:
        ray.shutdown()
    assert len(seen) == 1 and mentions_out_of_memory(seen[0]), seen
    assert result.error is None and result.metrics["attempt_ok"] == 1 and result.metrics["retries"] == 1


@pytest.mark.parametrize("missing", [None, "/nonexistent/error.txt"])
def test_a_retry_without_an_error_file_still_has_a_reason(missing):
    assert _last_failure(missing) == "the trial's worker failed"
