"""GPU sharing without a GPU: which errors are the GPU's fault, and a trial that runs out of GPU memory is handed
to the runner (no FAIL row) and, run again, goes on from its checkpoint. Real tiny training, no Ray."""
from __future__ import annotations

import socket

import pytest
import torch

from search.gpu import is_out_of_memory, mentions_out_of_memory, placement
from search.results import trial_path
from search.study import read_sweep_file
from search.trial import run_trial, trial_config


def test_out_of_memory_errors_are_told_apart_from_other_failures():
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert not is_out_of_memory(RuntimeError("CUDA out of memory"))  # the type decides, not the words
    assert not is_out_of_memory(MemoryError())  # host memory: not a neighbour on the GPU
    assert mentions_out_of_memory("ray.exceptions.RayTaskError(OutOfMemoryError): ... CUDA out of memory")
    assert not mentions_out_of_memory("ray.exceptions.ActorUnavailableError: Socket closed")


def test_placement_outside_ray_is_the_host_only():
    assert placement() == {"node": socket.gethostname(), "ray_node": None}


def test_a_trial_out_of_gpu_memory_is_raised_for_a_retry_that_continues_from_its_checkpoint(
        tmp_path, data_dir, critics_dir, sweep_file):
    spec, raw = read_sweep_file(sweep_file(tmp_path, data_dir, critics_dir))
    config = trial_config(spec, raw, 0, {"w_prototype": 1.0}, threads=1)
    stages: list[str] = []

    def neighbours_took_the_memory(stage, metrics):
        stages.append(stage)
        if stage == "rae_done":  # after the RAE's checkpoint, as if the LDM's first batch found no memory
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 512.00 MiB")

    with pytest.raises(torch.OutOfMemoryError):
        run_trial(config, neighbours_took_the_memory)
    assert not trial_path(spec.dir(), 0).exists()  # no FAIL row: the runner retries it
    assert stages == ["rae", "rae_done"]

    config.update(retries=1, oom_retries=1)  # what the driver adds before Tune starts the trial again
    stages.clear()
    row = run_trial(config, lambda stage, metrics: stages.append(stage))
    assert row["state"] == "COMPLETE", row.get("error")
    assert stages[0] == "rae_done" and "rae" not in stages  # the RAE was not trained again
    assert row["retries"] == 1 and row["oom_retries"] == 1 and row["node"] == socket.gethostname()
