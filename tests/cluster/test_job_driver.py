"""The driver as a Ray job's entrypoint, without Ray: a relative sweep root is refused (fast)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_a_relative_root_inside_a_ray_job_is_refused_before_anything_is_written(tmp_path, data_dir, critics_dir,
                                                                               monkeypatch, sweep_file):
    path = sweep_file(tmp_path, data_dir, critics_dir, name="rel", root="sweeps")
    # What Ray's job supervisor gives the entrypoint's environment (the job's runtime env).
    env = {**os.environ, "RAY_JOB_CONFIG_JSON_ENV_VAR": json.dumps({"runtime_env": {"env_vars": {}}})}
    done = subprocess.run([sys.executable, "-m", "search.cli", "sweep", "run", str(path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "root: 'sweeps' is relative, and this Ray job runs in a temporary copy" in done.stderr
    assert not (tmp_path / "sweeps").exists()
    # Outside a job the same file is fine (checked without running it: an absolute root in a job is too).
    from search.preflight import check_root_in_job
    from search.study import read_sweep_file

    spec, _ = read_sweep_file(path)
    check_root_in_job(spec)
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", env["RAY_JOB_CONFIG_JSON_ENV_VAR"])
    spec, _ = read_sweep_file(path, {"root": str(tmp_path / "shared")})
    assert Path(spec.root).is_absolute()
    check_root_in_job(spec)
