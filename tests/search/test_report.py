"""Report figures and text from a small real results store and a real Optuna study."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
import pytest

from evaluation.figures import draw_figure3
from search.report import (best_text, best_trials, figure3_inputs, figure_caption, pareto_mask, row_params, status_text,
                           write_report)
from search.results import read_results, write_trial_row
from search.samplers import make_sampler
from search.space import suggest, train_config_for
from search.spec import objective_values, sweep_from_dict

optuna.logging.set_verbosity(optuna.logging.WARNING)
HUMAN = (1.0, 0.8)
PNG = b"\x89PNG\r\n\x1a\n"


def fake_metrics(params, rng):
    """Originality and recognizability that move with log10(weight), per family (a stand-in for training)."""
    family = params.get("family", "prototype")
    w = math.log10(params.get(f"w_{family}", 1.0))
    o = {"none": 1.4, "kl": 1.2, "prototype": 0.9}[family] - 0.1 * w + rng.normal(0, 0.02)
    r = {"none": 0.6, "kl": 0.55, "prototype": 0.75}[family] + 0.05 * w + rng.normal(0, 0.01)
    return o, r


def run_sweep(tmp_path, data_dir, objective, n=14):
    raw = {"name": "r", "train": {"preset": "quick", "data": {"data_dir": str(data_dir)}}, "n_trials": n,
           "objective": objective, "sampler": {"name": "tpe" if objective == "distance" else "motpe", "seed": 1},
           "search": {"families": {"none": {}, "kl": {"low": 1.0e-3, "high": 1.0}, "prototype": {"low": 0.1, "high": 100}}}}
    spec = sweep_from_dict(raw)
    study = optuna.create_study(directions=spec.directions, sampler=make_sampler(spec))
    rng = np.random.default_rng(0)
    for _ in range(n):
        trial = study.ask()
        params = suggest(trial, spec.space)
        row = {"sweep": "r", "trial": trial.number, "params": params, "setting": train_config_for(spec, params).rae.setting,
               "dataset": "omniglot", "human_originality": HUMAN[0], "human_recognizability": HUMAN[1], "normalization": "relative",
               "objective": objective, "run_dir": f"sweeps/r/trials/{trial.number:05d}"}
        if trial.number == 3:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            row.update(state="FAIL", error="loss became nan")
        else:
            o, r = fake_metrics(params, rng)
            values = objective_values(objective, originality=o, recognizability=r, human_originality=HUMAN[0],
                                      human_recognizability=HUMAN[1])
            d = math.hypot((o - HUMAN[0]) / HUMAN[0], (r - HUMAN[1]) / HUMAN[1])
            study.tell(trial, list(values))
            row.update(state="COMPLETE", originality=o, recognizability=r, distance=d, value_0=values[0],
                       value_1=values[1] if len(values) > 1 else None, sampler="ddim", sampler_steps=50,
                       guidance=1.0, critics="c0ffee")
        write_trial_row(tmp_path, row, space=spec.space)
    return read_results(tmp_path), study


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 10_000  # a real figure, not an empty canvas


def test_report_figures_for_a_single_objective_sweep(tmp_path, data_dir):
    df, study = run_sweep(tmp_path / "sweep", data_dir, "distance")
    paths = write_report(df, tmp_path / "report", study=study, name="r")
    assert [p.name for p in paths] == ["figure3.png", "distance.png", "importance.png", "settings.md"]
    for path in paths[:-1]:
        assert_png(path)
    # Figure 3 is evaluation.figures' (as `humanlike figure fig3`): each setting's trials, the human star, the best
    fig = draw_figure3(**figure3_inputs(df, title="t"))
    (ax,) = fig.axes
    series = {c.get_label(): np.asarray(c.get_offsets()) for c in ax.collections}
    done = df[df["state"] == "COMPLETE"]
    settings = [s for s in ("none", "kl", "prototype") if s in set(done["setting"])]
    assert list(series) == settings + ["human (held-out, omniglot-test)", f"best (trial {best_trials(df, 1).iloc[0]['trial']})"]
    for setting in settings:
        mine = done[done["setting"] == setting]
        assert sorted(map(tuple, series[setting])) == sorted(zip(mine["originality"], 100 * mine["recognizability"]))
    np.testing.assert_allclose(series["human (held-out, omniglot-test)"], [[HUMAN[0], 100 * HUMAN[1]]])
    fitted = [s for s in settings
              if len({row_params(r).get(f"w_{s}") for _, r in done[done["setting"] == s].iterrows()} - {None}) >= 3]
    assert len(ax.lines) == len(fitted)


def test_report_figures_for_a_pareto_sweep(tmp_path, data_dir):
    df, study = run_sweep(tmp_path / "sweep", data_dir, "pareto")
    paths = write_report(df, tmp_path / "report", study=study)
    assert [p.name for p in paths] == ["figure3.png", "distance.png", "importance.png", "pareto.png", "settings.md"]
    assert_png(paths[-2])
    assert "Pareto front:" in status_text(df)
    best = best_trials(df, 20)
    expected = pareto_mask(best[["value_0", "value_1"]].to_numpy())
    assert best["pareto"].tolist() == expected.tolist() and expected.any()


def test_report_of_an_empty_sweep(tmp_path):
    df = read_results(tmp_path)
    paths = write_report(df, tmp_path / "report")
    assert [p.name for p in paths] == ["figure3.png", "distance.png", "settings.md"]
    assert status_text(df, name="x", n_trials=6).splitlines() == [
        "sweep x: 0 of 6 trials finished (COMPLETE 0, PRUNED 0, FAIL 0)", "best so far: none yet"]
    assert best_text(df) == "no completed trials yet"


def test_status_and_best_text(tmp_path, data_dir):
    df, _ = run_sweep(tmp_path / "sweep", data_dir, "distance")
    text = status_text(df, name="r", n_trials=20)
    assert text.splitlines()[0] == "sweep r: 14 of 20 trials finished (COMPLETE 13, PRUNED 0, FAIL 1)"
    assert not any(line.startswith("cost per completed trial") for line in text.splitlines())  # none recorded
    done = df[df["state"] == "COMPLETE"]
    winner = done.loc[done["distance"].idxmin()]
    assert f"best so far: trial {winner['trial']} " in text and f"{winner['distance']:.4f}" in text
    lines = best_text(df, 3).splitlines()
    ranked = done.sort_values("distance")["trial"].tolist()[:3]
    assert [line.split()[2] for line in lines if line[0].isdigit()] == [str(t) for t in ranked]
    # A stored run_dir is relative to the sweep directory; best_text shows it absolute (search/portable.py).
    assert lines[2].strip().startswith("run: /") and lines[2].endswith(f"/sweeps/r/trials/{ranked[0]:05d}")
    # both name how the samples were drawn and scored (every figure about models does)
    scored = "scored with ddim-50, guidance 1 (cfg), critics c0ffee"  # rows before schema 4 read as cfg
    assert f"  {scored}" in text.splitlines() and lines[-1] == f"({scored})"
    assert figure_caption(df, "preset quick: RAE 6 + LDM 40 epochs") == f"preset quick: RAE 6 + LDM 40 epochs; {scored}"


def test_pareto_mask_golden():
    values = np.array([[1.0, 4.0], [2.0, 2.0], [3.0, 3.0], [4.0, 1.0], [2.0, 2.0], [5.0, 5.0]])
    # (3, 3) is dominated by (2, 2); (5, 5) by everything; equal points do not dominate each other
    assert pareto_mask(values).tolist() == [True, True, False, True, True, False]


@pytest.mark.parametrize("k", [1, 5])
def test_best_trials_are_sorted_by_distance(tmp_path, data_dir, k):
    df, _ = run_sweep(tmp_path / "sweep", data_dir, "distance", n=8)
    best = best_trials(df, k)
    assert len(best) == k and best["distance"].is_monotonic_increasing and (best["state"] == "COMPLETE").all()


def test_status_summarizes_cost_per_stage_and_throughput(tmp_path):
    import datetime as dt

    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    stages = {"wall_rae_s": (10.0, 30.0), "wall_ldm_s": (20.0, 40.0), "wall_sample_s": (5.0, 7.0),
              "wall_critics_s": (1.0, 3.0), "wall_total_s": (40.0, 80.0), "peak_rss_mb": (900.0, 1500.0)}
    for n in range(2):
        row = {"sweep": "c", "trial": n, "state": "COMPLETE", "originality": 0.5, "recognizability": 0.8,
               "distance": 0.1, "started_at": t0 + dt.timedelta(minutes=10 * n),
               "finished_at": t0 + dt.timedelta(minutes=10 * n + 5), **{k: v[n] for k, v in stages.items()}}
        write_trial_row(tmp_path, row)
    write_trial_row(tmp_path, {"sweep": "c", "trial": 2, "state": "FAIL", "wall_rae_s": 1000.0,
                               "started_at": t0, "finished_at": t0 + dt.timedelta(minutes=30), "error": "x"})
    lines = status_text(read_results(tmp_path), name="c").splitlines()
    # means over the two COMPLETE trials only (the FAIL's 1000 s is not a trial's cost)
    assert lines[1] == ("cost per completed trial (mean): RAE 20 s, LDM 30 s, sampling 6 s, critics 2 s, total 60 s; "
                        "peak memory median 1200 MiB, max 1500 MiB")
    assert lines[2].startswith("throughput: 6.0 trials/hour (3 trials in 30.0 min")


def test_throughput_counts_a_continued_trials_work_before_the_driver_that_finished_it(tmp_path):
    import datetime as dt

    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    # trial 0 ran start to end in one driver (minutes 15-20); trial 1 was continued: the attempt that finished it
    # started at minute 20, but its stages had run for 15 minutes in all, so its work began at minute 10
    for n, (start, end, total) in enumerate(((15, 20, 300.0), (20, 25, 900.0))):
        write_trial_row(tmp_path, {"sweep": "c", "trial": n, "state": "COMPLETE", "originality": 0.5,
                                   "recognizability": 0.8, "distance": 0.1, "wall_total_s": total,
                                   "started_at": t0 + dt.timedelta(minutes=start),
                                   "finished_at": t0 + dt.timedelta(minutes=end)})
    lines = status_text(read_results(tmp_path), name="c").splitlines()
    assert lines[2].startswith("throughput: 8.0 trials/hour (2 trials in 15.0 min"), lines


def test_status_and_best_show_the_stage_ceilings_of_schema_3_rows(tmp_path, data_dir):
    df, _ = run_sweep(tmp_path, data_dir, "distance", n=5)
    assert "stage ceilings" not in best_text(df, 3)  # rows without them (older schema) show nothing
    best = best_trials(df, 1).iloc[0]
    i = df.index[df["trial"] == best["trial"]][0]
    values = {"ceiling_ae_originality": 0.61, "ceiling_ae_recognizability": 0.873, "ceiling_ae_distance": 0.07,
              "ceiling_copy_originality": 0.25, "ceiling_copy_recognizability": 0.99, "ceiling_copy_distance": 0.5,
              "latent_spread_ratio": 1.08, "nearest_exemplar_sampled": 0.62, "nearest_exemplar_real": 0.71}
    for k, v in values.items():
        df.loc[i, k] = v
    text = status_text(df, name="r")
    assert "autoencoder o 0.610 r 0.873 (distance 0.070)" in text and "spread x1.08" in text
    assert "nearest own exemplar 62% (real 71%)" in text
    assert best_text(df, 3).count("stage ceilings") == 1  # only the best trial has them here


def test_status_and_best_flag_faint_samples_of_schema_5_rows(tmp_path, data_dir):
    """The critics binarize every image: rows say how grey the samples' ink is beside people's, and warn when the
    samples are grey ghosts (evaluation/ink.py's rule); rows before schema 5 show nothing."""
    df, _ = run_sweep(tmp_path, data_dir, "distance", n=5)
    assert "ink:" not in status_text(df, name="r") + best_text(df, 3)
    ranked = best_trials(df, 2)
    first, second = (df.index[df["trial"] == t][0] for t in ranked["trial"])
    df.loc[[first, second], "ink_grey_share_human"] = 0.742
    df.loc[first, "ink_grey_share"], df.loc[second, "ink_grey_share"] = 0.983, 0.906
    df.loc[first, "ink_grey_share_ae"] = 0.991  # the autoencoder blurs already (the second row: not recorded)
    text = status_text(df, name="r")
    assert ("ink: 98% of the samples' ink is mid-grey (people's drawings 74%, through the autoencoder 99%); FAINT"
            in text)
    best = best_text(df, 3)
    assert best.count("FAINT") == 1 and "ink: 91% of the samples' ink is mid-grey (people's drawings 74%)\n" in best


def test_settings_table_gives_each_settings_nearest_trial(tmp_path, data_dir):
    from search.report import best_per_setting, settings_table, setting_of

    df, _ = run_sweep(tmp_path, data_dir, "distance")
    done = df[df["state"] == "COMPLETE"]
    best = best_per_setting(df)
    settings = {setting_of(r) for _, r in done.iterrows()}
    assert list(best["setting_label"]) == sorted(settings, key=lambda s: best.set_index("setting_label").loc[s, "distance"])
    for _, row in best.iterrows():  # each is the minimum of its setting, computed here independently
        own = [r["distance"] for _, r in done.iterrows() if setting_of(r) == row["setting_label"]]
        assert row["distance"] == min(own)
    table = settings_table(df)
    lines = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| rank")]
    assert len(lines) == len(settings) and lines[0].startswith(f"| 1 | {best.iloc[0]['setting_label']} |")
    assert f"{best.iloc[0]['distance']:.3f}" in lines[0]
    assert all(line.split(" | ")[-2] == "-" for line in lines) and "Grey ink" not in table  # rows before schema 5
    # the grey-ink column: the mean over the best configuration's seeds, 'faint' by evaluation/ink.py's rule
    label = best.iloc[0]["setting_label"]
    mine = [i for i, r in df.iterrows() if r["state"] == "COMPLETE" and setting_of(r) == label]
    df.loc[mine, "ink_grey_share"], df.loc[mine, "ink_grey_share_human"] = 0.99, 0.373
    inked = settings_table(df)
    first = next(line for line in inked.splitlines() if line.startswith("| 1 |"))
    assert first.split(" | ")[-2] == "0.99 faint" and "people's drawings 0.37" in inked
    paths = write_report(df, tmp_path / "report")
    text = (tmp_path / "report" / "settings.md").read_text()
    assert inked in text and not (tmp_path / "report" / "figure2.png").exists()  # no stored samples in this sweep
    assert text.splitlines()[-1].startswith("Figure 2 was not redrawn: no trial has its samples on this machine")


def _grid_sweep(root, name, seed, points, *, guidance=1.0, run_dirs=False):
    """A finished grid sweep on disk (saved spec + rows): points = [(family, weight or None, o, r)]; run_dirs: each
    row names a run directory trials/NNNNN/run (not created here)."""
    from search.study import save_spec

    families = {}
    for family, w, _, _ in points:
        families.setdefault(family, {"choices": []} if w is not None else {})
        if w is not None:
            families[family]["choices"].append(w)
    raw = {"name": name, "root": str(root), "train": {"preset": "quick", "seed": seed}, "sampler": "grid",
           "search": {"families": families}, "evaluation": {"sampler": "ddim", "steps": 50, "guidance": guidance}}
    spec = sweep_from_dict(raw, check_data=False)
    save_spec(spec, raw)
    for n, (family, w, o, r) in enumerate(points):
        params = {"family": family, **({} if w is None else {f"w_{family}": w})}
        write_trial_row(spec.dir(), {
            "sweep": name, "trial": n, "state": "COMPLETE", "params": params, "setting": family, "seed": seed,
            "dataset": "omniglot", "originality": o, "recognizability": r, "human_originality": HUMAN[0],
            "human_recognizability": HUMAN[1], "normalization": "relative", "critics": "c0ffee", "sampler": "ddim",
            "sampler_steps": 50, "guidance": guidance, "objective": "distance",
            "distance": math.hypot((o - HUMAN[0]) / HUMAN[0], (r - HUMAN[1]) / HUMAN[1]),
            **({"run_dir": str(spec.dir() / "trials" / f"{n:05d}" / "run")} if run_dirs else {})}, space=spec.space)
    return spec


def test_report_with_seed_repeats_and_extra_weights_averages_the_seeds(tmp_path, sweep_cli):
    """`sweep report GRID --with SEED1 EDGES`: one table over the three sweeps, each configuration's distance the
    mean over its seeds; sweeps evaluated otherwise (another guidance) are refused before anything is written."""
    _grid_sweep(tmp_path, "g", 0, [("none", None, 1.5, 0.5), ("prototype", 1.0, 1.2, 0.70),
                                   ("prototype", 10.0, 1.1, 0.74)])
    _grid_sweep(tmp_path, "g1", 1, [("prototype", 10.0, 1.3, 0.70)])  # seed 1 of prototype 10: worse
    _grid_sweep(tmp_path, "ge", 0, [("prototype", 100.0, 1.16, 0.73)])
    d = {w: [math.hypot(o - 1.0, (r - 0.8) / 0.8) for o, r in pts]
         for w, pts in {1.0: [(1.2, 0.70)], 10.0: [(1.1, 0.74), (1.3, 0.70)], 100.0: [(1.16, 0.73)]}.items()}
    mean = {w: sum(v) / len(v) for w, v in d.items()}
    best_w = min(mean, key=mean.get)
    assert best_w == 100.0 and min(d[10.0]) < mean[100.0]  # a single lucky seed of 10 would have won: the mean decides

    out = tmp_path / "combined"
    done = sweep_cli("report", "g", "--root", str(tmp_path), "--with", "g1", "ge", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    table = (out / "settings.md").read_text()
    assert table.startswith("# Each setting's best weight (g + g1 + ge)")
    proto = next(line for line in table.splitlines() if "| prototype |" in line)
    assert "| 100 |" in proto and f"| {mean[100.0]:.3f} |" in proto and "| 1 |" in proto
    assert (out / "figure3.png").is_file() and not (out / "distance.png").exists()  # trial numbers would collide
    from search.report import config_summary
    from search.rescore import combined_results

    combined = combined_results([tmp_path / n for n in ("g", "g1", "ge")])[0]
    assert figure3_inputs(combined)["best"][0] == "best (g trial 2)"  # the nearest single trial, named with its sweep
    summary = config_summary(combined)
    ten = summary[(summary["setting_label"] == "prototype") & (summary["param.w_prototype"] == 10.0)].iloc[0]
    assert ten["n_seeds"] == 2 and ten["distance"] == pytest.approx(mean[10.0])
    assert ten["distance_range"] == pytest.approx(abs(d[10.0][0] - d[10.0][1]))
    noise = abs(d[10.0][0] - d[10.0][1])
    none = math.hypot(1.5 - 1.0, (0.5 - 0.8) / 0.8)
    assert none - mean[100.0] > noise  # the grid separates 'none' from prototype beyond the seeds' noise
    assert (f"Seed-to-seed noise: the 1 configuration(s) trained with several seeds differ by up to {noise:.3f} in "
            "distance between seeds; every other setting is farther than that from prototype.") in table

    _grid_sweep(tmp_path, "gw", 0, [("prototype", 10.0, 1.0, 0.8)], guidance=2.0)
    refused = sweep_cli("report", "g", "--root", str(tmp_path), "--with", "gw", "--out", str(tmp_path / "no"),
                        cwd=tmp_path)
    assert refused.returncode != 0 and "differ in guidance" in refused.stderr
    assert not (tmp_path / "no").exists()


def test_settings_table_names_the_settings_that_seed_noise_does_not_separate(tmp_path):
    """kl 1 is nearest on one seed; prototype 10's two seeds differ by more than kl's lead, so the table says the
    seeds do not separate the two; without seed repeats it says nothing about noise."""
    from search.report import settings_table
    from search.rescore import combined_results

    def dist(o, r):
        return math.hypot(o - 1.0, (r - 0.8) / 0.8)

    _grid_sweep(tmp_path, "a", 0, [("prototype", 10.0, 1.1, 0.74), ("kl", 1.0, 1.15, 0.74), ("none", None, 1.9, 0.3)])
    assert "Seed-to-seed" not in settings_table(combined_results([tmp_path / "a"])[0])
    _grid_sweep(tmp_path, "a1", 1, [("prototype", 10.0, 1.3, 0.70)])
    table = settings_table(combined_results([tmp_path / "a", tmp_path / "a1"])[0])
    noise = dist(1.3, 0.70) - dist(1.1, 0.74)
    proto, kl = (dist(1.1, 0.74) + dist(1.3, 0.70)) / 2, dist(1.15, 0.74)
    assert 0 < proto - kl <= noise < dist(1.9, 0.3) - kl
    assert next(line for line in table.splitlines() if line.startswith("| 1 |")).startswith("| 1 | kl |")
    assert (f"differ by up to {noise:.3f} in distance between seeds; prototype is within that of kl: these seeds do "
            "not separate them.") in table


def test_figure2_draws_each_settings_best_configuration_from_any_seed_with_stored_samples(tmp_path, data_dir):
    """The seed-0 trials' samples are gone (run directories not committed); seed 1 of the best prototype weight
    kept its samples: Figure 2 draws prototype 10 from seed 1, and settings.md names the setting it leaves out."""
    from search.report import figure2_best
    from search.rescore import combined_results, samples_path

    _grid_sweep(tmp_path, "g", 0, [("none", None, 1.5, 0.5), ("prototype", 10.0, 1.1, 0.74)], run_dirs=True)
    _grid_sweep(tmp_path, "g1", 1, [("prototype", 10.0, 1.2, 0.72)], run_dirs=True)
    df = combined_results([tmp_path / "g", tmp_path / "g1"])[0]
    kept = df[df["sweep"] == "g1"].iloc[0]
    stored = samples_path(kept)
    stored.parent.mkdir(parents=True)
    np.savez(stored, samples=np.random.default_rng(0).random((150, 4, 48, 48)).astype(np.float32))
    assert all(not samples_path(r).exists() for _, r in df[df["sweep"] == "g"].iterrows())

    path, missing = figure2_best(df, tmp_path / "f2.png", data_dir=data_dir)
    assert path.read_bytes().startswith(PNG) and missing == ["none"]

    write_report(df, tmp_path / "report", data_dir=data_dir)
    assert (tmp_path / "report" / "figure2.png").is_file() and not (tmp_path / "report" / "figure2_partial.png").exists()
    assert "Figure 2 leaves out none:" in (tmp_path / "report" / "settings.md").read_text()
    # An earlier figure2.png is not replaced by one that leaves settings out: the partial one is written beside it.
    (tmp_path / "report" / "figure2.png").write_bytes(PNG + b"earlier, complete")
    write_report(df, tmp_path / "report", data_dir=data_dir)
    assert (tmp_path / "report" / "figure2.png").read_bytes() == PNG + b"earlier, complete"
    assert (tmp_path / "report" / "figure2_partial.png").read_bytes().startswith(PNG)
    text = (tmp_path / "report" / "settings.md").read_text()
    assert "Figure 2 was not redrawn: this machine lacks the samples of none" in text and "figure2_partial.png" in text
    stored.unlink()  # no setting has samples now: no figure, both named
    assert figure2_best(df, tmp_path / "f2b.png", data_dir=data_dir) == (None, ["prototype 10", "none"])
    earlier = (tmp_path / "report" / "figure2.png").read_bytes()
    write_report(df, tmp_path / "report", data_dir=data_dir)  # the earlier figure stays, and the table says so
    assert (tmp_path / "report" / "figure2.png").read_bytes() == earlier
    assert not (tmp_path / "report" / "figure2_partial.png").exists()  # the stale partial figure is gone
    text = (tmp_path / "report" / "settings.md").read_text()
    assert "Figure 2 was not redrawn" in text and "from an earlier report" in text and "leaves out" not in text


def test_the_figures_budget_names_network_sizes_a_sweep_file_changed(tmp_path):
    """A sweep that changes the preset's network sizes (examples/quickdraw_wide.yaml) says so under its figures;
    one that does not keeps the plain budget; a sweep started under an earlier standard preset names the budget
    its trials trained with (its train_resolved.yaml), not today's preset."""
    from types import SimpleNamespace

    from search.study import load_saved_spec
    from search.sweep_cli import _budget

    def spec(train):
        return SimpleNamespace(train=train, dir=lambda: tmp_path)  # a sweep directory without train_resolved.yaml

    plain = {"preset": "standard", "data": {"dataset": "quickdraw"}}
    assert _budget(spec(plain)) == "preset standard: RAE 8 + LDM 60 epochs"
    wide = {**plain, "rae": {"latent_size": 64}, "ldm": {"width": 256}}
    assert _budget(spec(wide)) == "preset standard: RAE 8 + LDM 60 epochs (latent 64, LDM width 256)"
    # Omniglot's default latent is 64: asking for it changes nothing.
    same = {"preset": "standard", "data": {"dataset": "omniglot"}, "rae": {"latent_size": 64}}
    assert _budget(spec(same)) == "preset standard: RAE 8 + LDM 60 epochs"
    grid = load_saved_spec(Path(__file__).resolve().parents[2] / "results" / "v3" / "standard_grid")
    assert grid.train == {"preset": "standard", "seed": 0, "data": {"dataset": "omniglot"}}
    assert _budget(grid) == "preset standard: RAE 8 + LDM 40 epochs"


def test_bench_ink_tells_faint_samples_from_crisp_ones(tmp_path, data_dir, omniglot, capsys, bench_script):
    """bench/bench_ink.py prints the human drawings and every trial with stored samples, nearest to people first,
    with the grey share of evaluation/ink.py (crisp strokes: none)."""
    from scipy.ndimage import gaussian_filter

    from search.rescore import combined_results, samples_path

    bench_ink = bench_script("bench_ink")
    drawings = omniglot.test_images[:200].numpy()
    crisp = np.where(drawings > 127, 255, 0).astype(np.uint8)
    blurred = np.stack([gaussian_filter(d.astype(np.float32), 1.0) for d in drawings]).clip(0, 255).astype(np.uint8)

    _grid_sweep(tmp_path, "g", 0, [("none", None, 1.5, 0.5), ("prototype", 10.0, 1.1, 0.74)], run_dirs=True)
    rows = combined_results([tmp_path / "g"])[0]
    for (_, row), images in zip(rows.iterrows(), (blurred, crisp)):
        path = samples_path(row)
        path.parent.mkdir(parents=True)
        np.savez(path, samples=images[:150].reshape(150, 1, 48, 48))
    # the rows name Omniglot: the script reads its drawings from data_dir
    bench_ink.main([str(tmp_path / "g"), "--data-dir", str(data_dir)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("held-out human drawings") and len(lines) == 3
    assert lines[1].startswith("g 1: prototype 10") and "grey 0.000" in lines[1]  # nearer people: listed first
    assert lines[2].startswith("g 0: none")
