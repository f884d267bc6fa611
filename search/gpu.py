"""Trials that share a GPU: where a trial runs, and which of its failures are the GPU's fault.

Ray packs trials by their logical `resources.gpu` share (0.25: four trials on one GPU) but caps nothing: each trial
process holds its own CUDA context and allocator cache, and a neighbour's peak can leave a trial without memory.
That is a property of the moment, not of the configuration, so run_trial lets an out-of-memory error through
instead of recording a FAIL row: Tune's FailureConfig starts the trial again in a fresh worker process (all of the
old process's GPU memory released), which continues from the last epoch checkpoint of the run directory. The
driver echoes each retry and counts the out-of-memory ones in the row's `oom_retries`; when the retries run out
the driver records the trial as FAIL with the error (search/driver.py).
"""
from __future__ import annotations

import socket
import sys


def is_out_of_memory(exc: BaseException) -> bool:
    """torch.OutOfMemoryError (torch >= 2.5) or torch.cuda.OutOfMemoryError (its older name, same class now)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    kinds = tuple(k for k in (getattr(torch, "OutOfMemoryError", None),
                              getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)) if k is not None)
    return bool(kinds) and isinstance(exc, kinds)


def mentions_out_of_memory(error_text: str) -> bool:
    """Whether a Ray trial error's text (the worker's traceback) is an out-of-memory error of torch."""
    return "OutOfMemoryError" in error_text


def placement() -> dict[str, str | None]:
    """Where this process runs: the host name, and the Ray node id inside a Ray worker (None outside Ray)."""
    ray_node = None
    ray = sys.modules.get("ray")  # never import Ray for this: a trial run without Ray must not start it
    if ray is not None and ray.is_initialized():
        ray_node = ray.get_runtime_context().get_node_id()
    return {"node": socket.gethostname(), "ray_node": ray_node}
