"""The training-recipe ablation of docs/recipe.md: one fixed configuration, one change at a time.

Each variant is a training config (a preset plus overrides) for prototype 1 + Barlow 10 on Omniglot. Variants that
share an autoencoder recipe share one trained autoencoder: the first variant of a group trains it, the others
copy its rae.pt into their own run directory and train only the diffusion model (models/train.py skips a
finished stage). Every variant is then evaluated with the same sampler, guidance and critics, and one line per
variant is printed and appended to a Parquet table: the change, the minutes of each stage (wall, with the load average beside them), the stage
ceilings (evaluation/ceilings.py), originality, recognizability and distance to the held-out human point.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/bench_recipe.py --out runs/recipe \
        --variants standard standard-lr3e-3 standard-seed1 paper-ldm-lr1e-3 ... [--sampler ddim --steps 50]

`--list` prints the variants. Runs already trained and evaluated are read back, not redone, so the script can be
stopped and started again (or run as two processes on disjoint variant lists, one thread each).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

from models.config import PRESETS  # torch-free

FIXED = {"data": {"dataset": "omniglot"}, "rae": {"regularizers": {"prototype": 1.0, "barlow": 10.0}}}
_OLD_QUICK = {"preset": "quick", "rae": {"epochs": 4, "lr": 1e-3, "batch_size": 128, "lr_schedule": "constant",
                                         "warmup": 0.0},
              "ldm": {"epochs": 30, "lr": 3e-3, "lr_schedule": "constant", "warmup": 0.0, "ema": 0.0,
                      "grad_clip": 0.0, "prediction": "eps", "loss_space": "eps"}}
_RAE_B64 = {"lr": 1e-3, "batch_size": 64, "lr_schedule": "constant", "warmup": 0.0}
_RAE_B128 = {**_RAE_B64, "batch_size": 128}
_RAE_COSINE = {**_RAE_B128, "lr": 2e-3, "lr_schedule": "cosine", "warmup": 0.02}
_FIXED_LR_LDM = {"lr_schedule": "constant", "warmup": 0.0, "ema": 0.0, "grad_clip": 0.0, "prediction": "eps",
                 "loss_space": "eps"}
# The standard preset's diffusion budget until 2026-12-07 (40 epochs at peak 1e-3): the variants measured with it
# keep it, so that their rows in bench/recipe_ablation.parquet stay what they say; 'standard-2026-12-07' is the
# preset since (60 epochs at peak 3e-3).
STANDARD_LDM_UNTIL_2026_12_07 = {"epochs": 40, "lr": 1e-3}
# name -> (autoencoder group, what changes, config overrides on top of FIXED)
VARIANTS: dict[str, tuple[str, str, dict]] = {
    "quickstart-before": ("old-quick", "the quickstart's trial before issue 14 (400 classes, 4 + 30 epochs, "
                          "fixed rates 1e-3 / 3e-3)", _OLD_QUICK),
    "quickstart": ("quick", "the quickstart's trial on the quick preset now (same budget, our LDM recipe, the "
                   "autoencoder at the fixed rate 1e-3 in batches of 64)",
                   {"preset": "quick", "rae": {"epochs": 4, **_RAE_B64}, "ldm": {"epochs": 30}}),
    "quickstart-rae-b128": ("quick-rae-b128", "as quickstart, the autoencoder in batches of 128 (half the steps)",
                            {"preset": "quick", "rae": {"epochs": 4, **_RAE_B128}, "ldm": {"epochs": 30}}),
    "quickstart-rae-b128-epsloss": ("quick-rae-b128", "as quickstart-rae-b128, the v-output's loss in eps space",
                                    {"preset": "quick", "rae": {"epochs": 4, **_RAE_B128},
                                     "ldm": {"epochs": 30, "loss_space": "eps"}}),
    "quickstart-rae-cosine": ("quick-rae-cosine", "as quickstart-rae-b128, the autoencoder on the cosine schedule "
                              "at 2e-3", {"preset": "quick", "rae": {"epochs": 4, **_RAE_COSINE}, "ldm": {"epochs": 30}}),
    "quickstart-rae-cosine-epsloss": ("quick-rae-cosine", "as quickstart-rae-cosine, the v-output's loss in eps space",
                                      {"preset": "quick", "rae": {"epochs": 4, **_RAE_COSINE},
                                       "ldm": {"epochs": 30, "loss_space": "eps"}}),
    "quickstart-rae-cosine-eps": ("quick-rae-cosine", "as quickstart-rae-cosine, an eps-predicting denoiser",
                                  {"preset": "quick", "rae": {"epochs": 4, **_RAE_COSINE},
                                   "ldm": {"epochs": 30, "prediction": "eps", "loss_space": "eps"}}),
    "standard": ("standard", "the standard preset (all classes, cosine schedules, v-prediction, EMA 0.999, clip 1)",
                 {"preset": "standard"}),
    "standard-epsloss": ("standard", "standard, but the v-output's loss taken in eps space (the paper's weighting)",
                         {"preset": "standard", "ldm": {"loss_space": "eps"}}),
    "standard-eps": ("standard", "standard, but an eps-predicting denoiser (the paper's)",
                     {"preset": "standard", "ldm": {"prediction": "eps", "loss_space": "eps"}}),
    "standard-fixed-lr3e-3": ("standard", "standard autoencoder; LDM at the fixed rate 3e-3, no EMA, no clip "
                              "(the probe that diverged)", {"preset": "standard", "ldm": {"lr": 3e-3, **_FIXED_LR_LDM}}),
    "standard-fixed-lr1e-3": ("standard", "standard autoencoder; LDM at the fixed rate 1e-3, no EMA, no clip",
                              {"preset": "standard", "ldm": {"lr": 1e-3, **_FIXED_LR_LDM}}),
    "standard-fixed-lr3e-4": ("standard", "standard autoencoder; LDM at the fixed rate 3e-4, no EMA, no clip",
                              {"preset": "standard", "ldm": {"lr": 3e-4, **_FIXED_LR_LDM}}),
    "standard-lr3e-3": ("standard", "standard, LDM peak rate 3e-3", {"preset": "standard", "ldm": {"lr": 3e-3}}),
    "standard-lr3e-4": ("standard", "standard, LDM peak rate 3e-4", {"preset": "standard", "ldm": {"lr": 3e-4}}),
    "standard-no-ema": ("standard", "standard without the EMA", {"preset": "standard", "ldm": {"ema": 0.0}}),
    "standard-ldm20": ("standard", "standard, 20 LDM epochs", {"preset": "standard", "ldm": {"epochs": 20}}),
    "standard-seed1": ("standard-seed1", "standard, seed 1 (both stages)", {"preset": "standard", "seed": 1}),
    # The reference every recipe of ours is measured against (SPEC's: examples/paper.yaml is the same run, so a run
    # directory trained by `humanlike train examples/paper.yaml --out OUT/paper` is read back, not trained again).
    "paper": ("paper", "the paper's recipe (SPEC: all classes, 100 + 100 epochs, fixed rates 1e-4, eps-prediction, "
              "no EMA, no clipping)", {"preset": "paper"}),
    "paper-rae-standard-ldm": ("paper", "the paper's autoencoder (100 epochs) under the standard preset's diffusion "
                               "model", {"preset": "paper", "ldm": {**PRESETS["standard"]["ldm"],
                                                                    **STANDARD_LDM_UNTIL_2026_12_07},
                                         "sample": PRESETS["standard"]["sample"]}),
    "standard-rae-paper-ldm": ("standard", "the standard preset's autoencoder under the paper's diffusion model "
                               "(100 epochs, fixed rate 1e-4, eps-prediction, no EMA, no clipping)",
                               {"preset": "standard", "ldm": {"epochs": 100, "lr": 1e-4, **_FIXED_LR_LDM}}),
    # The paper's diffusion recipe for longer: SPEC gives its budget in epochs (100), and an Omniglot epoch is 230
    # steps of 128 against QuickDraw-FS's 2,148, so 100 Omniglot epochs are a tenth of the paper's steps there.
    **{f"standard-rae-paper-ldm-{e}": ("standard", f"as standard-rae-paper-ldm, {e} LDM epochs ({e * 230 // 1000}k "
                                       "steps; QuickDraw-FS's 100 epochs are 215k)",
                                       {"preset": "standard", "ldm": {"epochs": e, "lr": 1e-4, **_FIXED_LR_LDM}})
       for e in (200, 400, 800)},
    # ... and with one ingredient of the standard LDM recipe at a time (100 epochs, the paper's budget)
    "standard-rae-paper-ldm-ema": ("standard", "as standard-rae-paper-ldm, with the weight average (EMA 0.999)",
                                   {"preset": "standard", "ldm": {"epochs": 100, "lr": 1e-4, **_FIXED_LR_LDM,
                                                                  "ema": 0.999}}),
    "standard-rae-paper-ldm-v": ("standard", "as standard-rae-paper-ldm, the output read as v (v-loss)",
                                 {"preset": "standard", "ldm": {"epochs": 100, "lr": 1e-4, **_FIXED_LR_LDM,
                                                                "prediction": "v", "loss_space": "v"}}),
    "standard-rae-paper-ldm-lr1e-3": ("standard", "as standard-rae-paper-ldm, at the fixed rate 1e-3",
                                      {"preset": "standard", "ldm": {"epochs": 100, "lr": 1e-3, **_FIXED_LR_LDM}}),
    # The budget runs again at seed 1 (both stages: the seed-1 standard autoencoder, then the paper's diffusion
    # recipe at 100, 200, 400 and 800 epochs, and the v-reading at 100), for the seed-to-seed noise of the table above
    **{f"standard-seed1-paper-ldm{s}": ("standard-seed1", f"as standard-rae-paper-ldm{s}, seed 1 (both stages)",
                                       {"preset": "standard", "seed": 1,
                                        "ldm": {"epochs": e, "lr": 1e-4, **_FIXED_LR_LDM, **extra}})
       for s, e, extra in (("", 100, {}), ("-200", 200, {}), ("-400", 400, {}), ("-800", 800, {}),
                           ("-v", 100, {"prediction": "v", "loss_space": "v"}))},
}
for _name in ("standard", "standard-epsloss", "standard-eps", "standard-lr3e-3", "standard-lr3e-4", "standard-no-ema",
              "standard-ldm20", "standard-seed1"):
    _group, _change, _over = VARIANTS[_name]
    VARIANTS[_name] = (_group, _change, {**_over, "ldm": {**STANDARD_LDM_UNTIL_2026_12_07, **_over.get("ldm", {})}})
for _name in ("quickstart", "quickstart-rae-b128", "quickstart-rae-b128-epsloss", "quickstart-rae-cosine",
              "quickstart-rae-cosine-epsloss", "quickstart-rae-cosine-eps"):  # the quick preset's LDM at 1e-3 until then
    _group, _change, _over = VARIANTS[_name]
    VARIANTS[_name] = (_group, _change, {**_over, "ldm": {"lr": 1e-3, **_over["ldm"]}})
VARIANTS["quickstart-2026-12-07"] = ("quick", "the quickstart's trial on the quick preset since 2026-12-07 (as "
                                     "quickstart, the LDM at peak 3e-3)", VARIANTS["quickstart"][2] | {
                                         "ldm": {"epochs": 30, "lr": 3e-3}})
VARIANTS["standard-2026-12-07"] = ("standard", "the standard preset since 2026-12-07 (as standard, LDM 60 epochs at "
                                   "peak 3e-3)", {"preset": "standard"})

# A variant trained at a constant rate goes on from a shorter one's finished diffusion model instead of starting
# again: every epoch's random draws are seeded by (seed, stage, epoch) (models/train.py), so the result is the one
# an uninterrupted run of the longer budget gives, and its recorded LDM wall time includes the shorter run's.
CONTINUES: dict[str, str] = {"standard-rae-paper-ldm-200": "standard-rae-paper-ldm",
                             "standard-rae-paper-ldm-400": "standard-rae-paper-ldm-200",
                             "standard-rae-paper-ldm-800": "standard-rae-paper-ldm-400",
                             "standard-seed1-paper-ldm-200": "standard-seed1-paper-ldm",
                             "standard-seed1-paper-ldm-400": "standard-seed1-paper-ldm-200",
                             "standard-seed1-paper-ldm-800": "standard-seed1-paper-ldm-400"}


def merged(overrides: dict) -> dict:
    from models.config import merge

    return merge(FIXED, overrides)


def _finished(run_dir: Path) -> bool:
    """Both stages of the run in run_dir were trained before (by another process or an earlier call)."""
    from models.checkpoint import load_checkpoint

    path = run_dir / "ldm.pt"
    return path.exists() and load_checkpoint(path, "ldm")["state"]["done"]


def check_continuation(name: str) -> None:
    """Refuse a CONTINUES entry under which continuing would change the result: the two variants must share their
    autoencoder (group) and differ only in ldm.epochs, the longer one's, at a constant rate."""
    from models.config import build_config, config_difference, merge

    source = CONTINUES.get(name)
    if source is None:
        return
    if VARIANTS[name][0] != VARIANTS[source][0]:
        raise ValueError(f"{name} cannot continue {source}: their autoencoders differ "
                         f"({VARIANTS[name][0]} vs {VARIANTS[source][0]})")
    cfg, src_cfg = build_config(merged(VARIANTS[name][2])), build_config(merged(VARIANTS[source][2]))
    same_budget = build_config(merge(merged(VARIANTS[name][2]), {"ldm": {"epochs": src_cfg.ldm.epochs}}))
    diff = config_difference(src_cfg, same_budget)
    if diff or cfg.ldm.lr_schedule != "constant":  # (config validation refuses a warm-up on the constant schedule)
        raise ValueError(f"{name} cannot continue {source}: only ldm.epochs at a constant rate may differ "
                         f"({diff or f'ldm.lr_schedule {cfg.ldm.lr_schedule}'})")
    if src_cfg.ldm.epochs >= cfg.ldm.epochs:
        raise ValueError(f"{name} cannot continue {source}: {src_cfg.ldm.epochs} >= {cfg.ldm.epochs} epochs")


def continue_from(name: str, out: Path) -> bool:
    """Seed variant `name`'s run directory with the finished run of the variant it continues (CONTINUES); True if
    it did. Only a change of ldm.epochs at a constant rate is continued (check_continuation)."""
    from models.checkpoint import load_checkpoint, save_checkpoint

    check_continuation(name)
    source = CONTINUES.get(name)
    if source is None:
        return False
    run_dir, source_ldm = out / name, out / source / "ldm.pt"
    if (run_dir / "ldm.pt").exists() or not source_ldm.exists():
        return False
    ckpt = load_checkpoint(source_ldm, "ldm")
    if not ckpt["state"]["done"]:
        return False
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(out / source / "rae.pt", run_dir / "rae.pt")
    ckpt["state"]["done"] = False
    save_checkpoint(run_dir / "ldm.pt", "ldm", {k: v for k, v in ckpt.items() if k not in ("format", "version")})
    return True


def run_variant(name: str, out: Path, data, evaluation: dict, log, critics) -> dict:
    from evaluation.run_eval import evaluate_run, result_name
    from models.config import build_config
    from models.train import train_run

    group, change, overrides = VARIANTS[name]
    cfg = build_config(merged(overrides))
    run_dir = out / name
    shared = out / f"_rae_{group}" / "rae.pt"
    if not (run_dir / "rae.pt").exists() and shared.exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared, run_dir / "rae.pt")  # the group's finished autoencoder: only the LDM trains
    continue_from(name, out)
    trained_here = not _finished(run_dir)
    c0, t0 = time.process_time(), time.perf_counter()
    summary = train_run(cfg, run_dir, data=data, progress=False)
    if not shared.exists():
        shared.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(run_dir / "rae.pt", shared)
    train_cpu = time.process_time() - c0
    stem = result_name(evaluation["sampler"], evaluation["steps_name"], evaluation["guidance"], 0)
    existing = run_dir / f"{stem}.json"
    result = json.loads(existing.read_text()) if existing.exists() else None
    if result is None or result["critics_hash"] != critics.hash or "stage_ceilings" not in result:
        result, _ = evaluate_run(run_dir, sampler=evaluation["sampler"], steps=evaluation["steps"],
                                 guidance=evaluation["guidance"], imageset=data, critics=critics)
    c = result["stage_ceilings"]
    row = {
        "variant": name, "change": change, "autoencoder": group,
        "rae_wall_min": summary.rae["wall_s"] / 60, "ldm_wall_min": summary.ldm["wall_s"] / 60,
        # CPU and wall of the training done by this process: none when the run was trained before (another process
        # or an earlier call); the stages' own wall times above are always the ones the run recorded
        "train_process_cpu_min": train_cpu / 60 if trained_here else float("nan"),
        "train_wall_min": (time.perf_counter() - t0) / 60 if trained_here else float("nan"),
        "eval_s": result["generate_seconds"] + result["score_seconds"] + result.get("ceilings_seconds", 0),
        "heldout_rec": summary.rae["curve"][-1]["test_rec"],
        "ae_o": c["ae"]["originality"], "ae_r": c["ae"]["recognizability"], "ae_d": c["ae"]["distance"],
        "copy_o": c["copy"]["originality"], "copy_r": c["copy"]["recognizability"],
        "spread_ratio": c["latent_spread_ratio"], "nearest_sampled": c["nearest_exemplar_sampled"],
        "nearest_real": c["nearest_exemplar_real"],
        "originality": result["originality"], "recognizability": result["recognizability"],
        "distance": result["distance_to_human"], "sampler": result["sampler"], "steps": result["steps"],
        "guidance": result["guidance"], "critics": result["critics_hash"],
        "load_average": os.getloadavg()[0],
    }
    log(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    return row


def markdown(tables: list[Path]) -> str:
    """The rows of the ablation tables as the markdown table of docs/recipe.md, in VARIANTS order."""
    import pandas as pd

    df = pd.concat([pd.read_parquet(t) for t in tables], ignore_index=True)
    df["order"] = df["variant"].map({v: i for i, v in enumerate(VARIANTS)})
    lines = ["| critics | variant | change | RAE / LDM min (load) | held-out SSE | autoencoder o / r / d | copy o / r | "
             "spread ratio | nearest own (real) | originality | recognizability | distance |",
             "|" + "---|" * 12]
    df["evaluation"] = df["sampler"] + "-" + df["steps"].astype(int).astype(str)
    usual = df["evaluation"].mode().iloc[0]
    df["sampler_order"] = (df["evaluation"] != usual).astype(int)
    for _, r in df.sort_values(["critics", "order", "sampler_order"], ascending=[False, True, True]).iterrows():
        named = "" if r.evaluation == usual else f" ({r.evaluation})"
        lines.append(
            f"| {r.critics[:8]} | {r.variant}{named} | {r.change} | {r.rae_wall_min:.1f} / {r.ldm_wall_min:.1f} ({r.load_average:.1f}) | "
            f"{r.heldout_rec:.1f} | {r.ae_o:.3f} / {r.ae_r:.3f} / {r.ae_d:.3f} | {r.copy_o:.3f} / {r.copy_r:.3f} | "
            f"{r.spread_ratio:.2f} | {r.nearest_sampled:.2f} ({r.nearest_real:.2f}) | {r.originality:.3f} | "
            f"{r.recognizability:.3f} | {r.distance:.3f} |")
    guidance = ", ".join(f"{g:g}" for g in sorted(df["guidance"].unique()))
    lines.append(f"\nEvaluation: {usual} unless a variant names another sampler, guidance {guidance}; distance to the held-out "
                 f"human point of the row's critics ({', '.join(sorted(df.critics.unique()))}); compare rows only "
                 "under the same critics. LDM minutes recorded before 2026-12-06 include the training set's encoding "
                 "once per epoch instead of once (1-2 s an epoch on 2 cores; docs/results.md).")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/recipe"))
    p.add_argument("--variants", nargs="+", default=["standard"])
    p.add_argument("--sampler", default="ddim")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--guidance", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--table", type=Path, default=None, help="Parquet table to append to (default OUT/ablation.parquet)")
    p.add_argument("--list", action="store_true")
    p.add_argument("--markdown", nargs="+", type=Path, metavar="PARQUET",
                   help="print these ablation tables as one markdown table (docs/recipe.md) and exit")
    args = p.parse_args()
    if args.list:
        for name, (group, change, _) in VARIANTS.items():
            print(f"{name:24s} [{group}] {change}")
        return
    if args.markdown:
        print(markdown(args.markdown))
        return
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variants {unknown}; --list shows them")
    for name in args.variants:  # before any training
        try:
            check_continuation(name)
        except ValueError as e:
            p.error(str(e))

    import pandas as pd
    import torch

    from models.data import load_dataset

    torch.set_num_threads(args.threads)
    data = load_dataset("omniglot", data_dir=os.environ.get("HUMANLIKE_DATA_DIR"))
    from evaluation.critics import load_critics

    critics = load_critics("omniglot")  # the shipped critics; a stored evaluation by other critics is redone
    steps = args.steps if args.sampler == "ddim" else None
    evaluation = {"sampler": args.sampler, "steps": steps, "guidance": args.guidance,
                  "steps_name": steps if steps is not None else 1000}
    table = args.table or args.out / "ablation.parquet"
    for name in args.variants:
        row = run_variant(name, args.out, data, evaluation, lambda m: print(m, flush=True), critics)
        old = pd.read_parquet(table) if table.exists() else pd.DataFrame()
        if len(old):
            old = old[~((old["variant"] == name) & (old["sampler"] == row["sampler"]) & (old["steps"] == row["steps"])
                        & (old["guidance"] == row["guidance"]) & (old["critics"] == row["critics"]))]
        new = pd.concat([old, pd.DataFrame([row])], ignore_index=True)
        from models.atomic import atomic_open

        with atomic_open(table) as f:
            new.to_parquet(f)


if __name__ == "__main__":
    main()
