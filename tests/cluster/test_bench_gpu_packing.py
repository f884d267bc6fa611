"""bench/bench_gpu_packing.py: its options, the sweep each packing level runs, and a CPU dry run end to end."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "bench_gpu_packing.py"


def test_options_default_to_the_four_levels_and_refuse_nonsense(data_dir, capsys, bench_script):
    bench = bench_script("bench_gpu_packing")
    args = bench.parse_args(["--data-dir", str(data_dir)])
    assert args.packing == [1, 2, 4, 8] and args.rounds == 2 and not args.dry_run
    assert bench.parse_args(["--data-dir", str(data_dir), "--dry-run"]).packing == [1, 2]
    for bad, key in ((["--packing", "0"], "--packing"), (["--rounds", "0"], "--rounds"),
                     (["--rae-epochs", "-1"], "--rae-epochs"), (["--cpus", "0"], "--cpus")):
        with pytest.raises(SystemExit):
            bench.parse_args(["--data-dir", str(data_dir), *bad])
        assert key in capsys.readouterr().err


def test_each_level_shares_one_gpu_and_the_cpus_among_its_trials(data_dir, tmp_path, bench_script):
    bench = bench_script("bench_gpu_packing")
    args = bench.parse_args(["--data-dir", str(data_dir), "--cpus", "8", "--rounds", "3", "--rae-epochs", "2"])
    for k in (1, 2, 4, 8):
        sweep = bench.sweep_dict(args, k, tmp_path)
        assert sweep["resources"] == {"cpu": 8 / k, "gpu": 1 / k} and sweep["max_concurrent"] == k
        assert sweep["n_trials"] == 3 * k == len(sweep["search"]["regularizers"]["prototype"]["choices"])
        assert sweep["train"]["preset"] == "paper" and sweep["train"]["rae"] == {"epochs": 2}
        assert "ldm" not in sweep["train"]  # the preset's own LDM epochs


def test_a_dry_run_measures_tiny_trials_packed_on_a_logical_gpu(data_dir, tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--packing", "2", "--rounds", "1", "--cpus",
                           "2", "--data-dir", str(data_dir), "--root", str(tmp_path), "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=900)  # a guard against hangs, not a speed target
    assert done.returncode == 0, done.stdout + done.stderr
    (level,) = json.loads(out.read_text())["results"]
    assert level["trials_per_gpu"] == 2 and level["trials"] == level["done"] == 2 and level["oom_retries"] == 0
    assert level["trials_per_hour"] > 0 and "dry run: these figures are CPU time" in done.stdout
