"""Progress: the records a trial writes, what they mean (stage, epoch, share of the trial done, ETA), and, in the
slow test, a real sweep whose driver prints them while `humanlike sweep status` reads them from another process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from search.progress import (
    DEFAULT_SHARES, describe, eta_seconds, fraction_done, read_record, record_for, summary, waiting_for_resources,
    write_record,
)

REPO = Path(__file__).resolve().parents[2]
TRAIN = {"rae": {"epochs": 4}, "ldm": {"epochs": 30}}


def test_records_follow_the_trainers_reports():
    assert describe(record_for(3, "start", {}, TRAIN, 0.0)) == "starting"
    assert describe(record_for(3, "rae", {"epoch": 2, "rec": 1.0}, TRAIN, 0.0)) == "RAE 2/4"
    assert record_for(3, "rae_done", {"test_rec": 1.0}, TRAIN, 0.0) is None
    assert describe(record_for(3, "ldm", {"epoch": 17, "loss": 0.1}, TRAIN, 0.0)) == "LDM 17/30"
    assert describe(record_for(3, "ldm", {"epoch": 30, "loss": 0.1}, TRAIN, 0.0)) == "evaluating"


def test_a_continued_trial_is_paced_from_its_first_report():
    shares = {"rae": 0.5, "ldm": 0.4, "eval": 0.1}
    first = record_for(0, "ldm", {"epoch": 10}, TRAIN, started_at=0.0)  # continued: LDM 10/30 at once
    first["since"]["at"] = 100.0
    later = record_for(0, "ldm", {"epoch": 20}, TRAIN, started_at=0.0, previous=first)
    assert later["since"] == first["since"]
    # 10 LDM epochs (0.4 * 10 / 30 of a trial) in 40 s: 300 s a trial; 1 - 0.5 - 0.4 * 20 / 30 of it left: 70 s.
    eta = eta_seconds(finished=0, n_trials=1, running={0: later}, concurrency=1, trial_s=None, shares=shares,
                      now=140.0)
    assert eta == pytest.approx(70.0)


def test_fraction_and_eta_golden_values():
    shares = {"rae": 0.5, "ldm": 0.4, "eval": 0.1}
    rae = record_for(0, "rae", {"epoch": 2}, TRAIN, 0.0)
    ldm = record_for(1, "ldm", {"epoch": 15}, TRAIN, 0.0)
    assert fraction_done(rae, shares) == pytest.approx(0.25)
    assert fraction_done(ldm, shares) == pytest.approx(0.7)
    # 2 of 6 finished at 100 s a trial; 2 running (0.75 + 0.3 left) and 2 not started: 3.05 trials, 2 at a time.
    eta = eta_seconds(finished=2, n_trials=6, running={0: rae, 1: ldm}, concurrency=2, trial_s=100.0,
                      shares=shares, now=0.0)
    assert eta == pytest.approx(152.5)
    # No finished trial yet: the running trials' pace stands in (25% done after 50 s: 200 s a trial).
    rae["started_at"] = 0.0
    assert eta_seconds(finished=0, n_trials=1, running={0: rae}, concurrency=1, trial_s=None, shares=shares,
                       now=50.0) == pytest.approx(150.0)
    line = summary(finished=2, n_trials=6, running={0: rae, 1: ldm}, concurrency=2, trial_s=100.0,
                   shares=shares, now=0.0)
    assert line == "2/6 finished, 2 running, ETA 3 min | trial 0: RAE 2/4 | trial 1: LDM 15/30"
    # Room for one trial at a time: the later of two asked-for trials that has not reported yet is waiting, and the
    # ETA divides the work left by one.
    queued = record_for(1, "start", {}, TRAIN, 0.0)
    line = summary(finished=2, n_trials=6, running={0: rae, 1: queued}, concurrency=1, trial_s=100.0,
                   shares=shares, now=0.0)
    assert line == ("2/6 finished, 1 running, 1 waiting for resources, ETA 6 min | trial 0: RAE 2/4 | "
                    "trial 1: waiting")
    assert waiting_for_resources({0: queued, 1: rae}, 1) == {0} and waiting_for_resources({0: queued}, 1) == set()
    assert set(DEFAULT_SHARES) == {"rae", "ldm", "eval"} and sum(DEFAULT_SHARES.values()) == pytest.approx(1.0)


def test_a_record_is_replaced_whole(tmp_path):
    record = record_for(7, "ldm", {"epoch": 3}, TRAIN, 1.0)
    write_record(tmp_path / "trials" / "00007", record)
    assert read_record(tmp_path / "trials" / "00007") == json.loads(json.dumps(record))
    assert not [p for p in (tmp_path / "trials" / "00007").iterdir() if p.name != "progress.json"]  # no temporaries
    assert read_record(tmp_path / "missing") is None


def test_status_says_stopped_when_no_driver_holds_the_sweep(tmp_path, data_dir, critics_dir, sweep_file):
    """A driver that dies leaves its trials RUNNING in the study and their last progress files behind: `sweep
    status` asks the driver lock and shows them as stopped (no ETA) unless a driver holds it."""
    from search.progress import progress_lines
    from search.study import (
        driver_lock, driver_running, driver_trials_at_once, load_study, note_trials_at_once, open_study,
        read_sweep_file,
    )
    from search.trial import trial_dir

    spec, _ = read_sweep_file(sweep_file(tmp_path, data_dir, critics_dir, name="halt", n_trials=3))
    study = open_study(spec)
    study.tell(study.ask(), 0.5)
    number = study.ask().number  # left RUNNING, as a killed driver leaves it
    write_record(trial_dir(spec.dir(), number), record_for(number, "ldm", {"epoch": 17}, TRAIN, time.time() - 60))
    study = load_study(spec)
    assert not driver_running(spec.dir())
    stopped = progress_lines(spec, study, None)
    assert stopped[0].startswith("progress: stopped") and "1/3 finished" in stopped[0] and "ETA" not in stopped[0]
    assert "sweep resume halt" in stopped[0]
    assert stopped[1].startswith(f"  trial {number}: stopped at LDM 17/30, last report")
    with driver_lock(spec.dir()):
        assert driver_running(spec.dir())
        live = progress_lines(spec, study, None)
        assert live[0].startswith("progress: 1/3 finished, 1 running, ETA") and "trial 1: LDM 17/30" in live[0]
        assert "running for" in live[1]
        # Another trial asked for beyond what the driver's cluster holds at once (recorded in its lock): status
        # shows it waiting, as the driver does, and the ETA divides by the driver's number, not max_concurrent.
        queued = study.ask().number
        write_record(trial_dir(spec.dir(), queued), record_for(queued, "start", {}, TRAIN, time.time()))
        crowded = progress_lines(spec, load_study(spec), None)
        assert "2 running" in crowded[0] and "waiting" not in crowded[0]  # max_concurrent 2: room for both
        note_trials_at_once(spec.dir(), 1)
        assert driver_trials_at_once(spec.dir()) == 1
        waiting = progress_lines(spec, load_study(spec), None)
        assert "1 running, 1 waiting for resources" in waiting[0] and f"trial {queued}: waiting" in waiting[0]
    assert driver_trials_at_once(spec.dir()) == 1  # the record outlives the driver, but status asks the lock first
    assert progress_lines(spec, load_study(spec), None)[0].startswith("progress: stopped")
    assert not driver_running(spec.dir())  # the lock dies with its holder


@pytest.mark.slow
def test_a_running_sweep_shows_stage_and_epoch_in_the_driver_and_in_status(tmp_path, data_dir, critics_dir, sweep_file):
    """`humanlike sweep run` (output a pipe: plain lines, every 1 s here) and `humanlike sweep status` from
    another process while it runs: both name each running trial's stage and epoch."""
    path = sweep_file(tmp_path, data_dir, critics_dir, name="prog", n_trials=2, max_concurrent=2,
                      train={"rae": {"epochs": 2}, "ldm": {"epochs": 6}})
    env = {**os.environ, "HUMANLIKE_PROGRESS_EVERY_S": "1", "PYTHONUNBUFFERED": "1"}
    humanlike = [sys.executable, "-m", "search.cli"]
    driver = subprocess.Popen([*humanlike, "sweep", "run", str(path)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    seen = []
    try:
        deadline = time.monotonic() + 400
        while driver.poll() is None and time.monotonic() < deadline:
            out = subprocess.run([*humanlike, "sweep", "status", "prog", "--root", str(tmp_path / "sweeps")],
                                 cwd=REPO, env=env, capture_output=True, text=True)
            # A training stage with its epoch (the LDM stage of this tiny trial lasts a few seconds only).
            seen += [ln for ln in out.stdout.splitlines()
                     if ("RAE " in ln and "/2" in ln) or ("LDM " in ln and "/6" in ln)]
            if seen:
                break
            time.sleep(1)
        assert seen, "sweep status never showed a trial in a training stage with its epoch"
        assert not any("stopped" in ln for ln in seen), seen  # a driver holds the sweep
        assert any(ln.startswith("progress: ") and "running" in ln for ln in seen)
        assert any("running for" in ln and "last report" in ln for ln in seen)
        output, _ = driver.communicate(timeout=600)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, output
    lines = output.splitlines()
    progress = [ln for ln in lines if ln.startswith("progress: ")]
    assert any("RAE 1/2" in ln or "RAE 2/2" in ln for ln in progress), output
    assert any("LDM " in ln and "/6" in ln for ln in progress), output
    assert all("finished" in ln and "ETA" in ln for ln in progress)


def test_the_board_prints_plain_lines_or_redraws_a_status_line():
    import io

    from search.progress import ProgressBoard

    lines: list[str] = []
    board = ProgressBoard(n_trials=4, concurrency=2, finished=lambda: 1, rows=lambda: None, echo=lines.append,
                          every_s=0.0)
    board.tick()
    assert lines == []  # nothing running: nothing to say
    board.start(2, TRAIN)
    board.report(2, "ldm", {"epoch": 5, "loss": 0.3}, TRAIN)
    board.tick()
    assert lines == ["progress: 1/4 finished, 1 running, ETA unknown yet | trial 2: LDM 5/30"]
    board.end(2)

    terminal = io.StringIO()
    live = ProgressBoard(n_trials=4, concurrency=2, finished=lambda: 0, rows=lambda: None, echo=lines.append,
                         live=True, redraw_s=0.0, stream=terminal)
    live.start(0, TRAIN)
    live.report(0, "rae", {"epoch": 1}, TRAIN)
    live.tick()
    assert terminal.getvalue().endswith("\r\x1b[Kprogress: 0/4 finished, 1 running, ETA unknown yet | trial 0: RAE 1/4")
    live.echo("trial 0: COMPLETE")  # the driver's own line: the status line is cleared first
    assert terminal.getvalue().endswith("\r\x1b[K") and lines[-1] == "trial 0: COMPLETE"
    from ray import cloudpickle

    assert cloudpickle.loads(cloudpickle.dumps(live)).running == live.running  # Tune pickles the searcher
