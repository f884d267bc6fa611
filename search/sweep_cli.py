"""`humanlike sweep run|resume|status|best|report|export`: registered by search/cli.py.

Heavy modules (ray, optuna, torch, pandas) are imported inside the handlers, so `humanlike --help` stays instant.
Every mistake in a sweep file stops with exit status 2 and the key that holds it, before Ray starts and before
anything in an existing sweep directory is written.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from search.storage import as_path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="search regularizer weights: run, resume and inspect sweeps",
                       description="A sweep: Optuna chooses configurations, Ray Tune trains and evaluates them, "
                                   "every trial lands in Parquet, and an interrupted sweep resumes.")
    cmds = p.add_subparsers(dest="sweep_command", required=True, metavar="SUBCOMMAND")

    run = cmds.add_parser("run", help="run a sweep file, or continue its sweep (idempotent)",
                          description="Run SWEEP.yaml. Running it again continues the sweep: nothing finished "
                                      "is run again, interrupted trials continue from their last epoch, and a "
                                      "larger n_trials extends a finished sweep.")
    run.add_argument("sweep_file", help="sweep file (YAML), e.g. examples/quickstart.yaml")
    _execution_options(run)
    run.set_defaults(handler=_run)

    resume = cmds.add_parser("resume", help="continue a sweep from the copy of its file in the sweep directory")
    resume.add_argument("name", help="sweep name (the directory under --root)")
    _execution_options(resume)
    resume.set_defaults(handler=_resume)

    status = cmds.add_parser("status", help="trials by state, progress and the best trial so far")
    status.add_argument("name")
    _root(status)
    status.set_defaults(handler=_status)

    best = cmds.add_parser("best", help="the most human-like configurations with their metrics and run dirs")
    best.add_argument("name")
    best.add_argument("--top", type=int, default=5, metavar="K", help="how many (default 5)")
    _root(best)
    best.set_defaults(handler=_best)

    report = cmds.add_parser("report", help="figures: Figure 3, distance by trial, importance, Pareto front")
    report.add_argument("name")
    report.add_argument("--out", help="directory for the PNG files (default: <sweep dir>/report)")
    report.add_argument("--with", dest="with_sweeps", nargs="+", metavar="NAME", default=[],
                        help="also these sweeps of the same root (e.g. a grid's seed repeats and extra weights): "
                        "Figure 3, Figure 2 and the settings table over all their trials, seeds averaged; they must "
                        "have been evaluated alike (same critics, sampler, steps, guidance, human point)")
    _root(report)
    report.set_defaults(handler=_report)

    rescore = cmds.add_parser("rescore", help="score a sweep's stored samples again with other critics",
                              description="Score every finished trial's stored samples with other critics (default: "
                                          "the shipped ones) without training or sampling; the new scores are "
                                          "written beside the old under <sweep dir>/rescored/<critics hash>/, and "
                                          "status/best/report use the shipped critics' scores when they exist.")
    rescore.add_argument("name")
    rescore.add_argument("--critics", help="critics directory or name (default: the sweep dataset's shipped critics)")
    rescore.add_argument("--data-dir", help="dataset directory (default: $HUMANLIKE_DATA_DIR, then the cache)")
    rescore.add_argument("--force", action="store_true", help="score again trials already re-scored")
    rescore.add_argument("--threads", type=int, default=2)
    _root(rescore)
    rescore.set_defaults(handler=_rescore)

    export = cmds.add_parser("export", help="write every trial row into one Parquet file")
    export.add_argument("name")
    export.add_argument("out", help="output file, e.g. results.parquet")
    _root(export)
    export.set_defaults(handler=_export)


def _root(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", help="directory that holds the sweeps (default: the sweep file's root, 'sweeps')")


def _execution_options(p: argparse.ArgumentParser) -> None:
    _root(p)
    p.add_argument("--address", help="join this Ray cluster (e.g. auto or ray://head:10001) instead of starting "
                                     "an embedded Ray on this machine")
    p.add_argument("--trials", type=int, metavar="N", help="run until N trials are finished (overrides n_trials)")
    p.add_argument("--data-dir", help="dataset directory (default: the sweep file's, then $HUMANLIKE_DATA_DIR)")
    p.add_argument("--num-cpus", type=int, help="CPUs of the embedded Ray (default: all of this machine)")
    p.add_argument("--retry-failed", action="store_true",
                   help="run the configurations of FAIL trials again; those failures stop counting towards n_trials "
                        "(after fixing an environment problem that failed them)")


# --- run / resume -----------------------------------------------------------------------------------------------


def _overrides(args: argparse.Namespace) -> dict:
    out = {}
    if args.root:
        out["root"] = args.root
    if args.trials is not None:
        out["n_trials"] = args.trials
    if args.data_dir:
        out["train.data.data_dir"] = args.data_dir
    return out


def _run(args: argparse.Namespace) -> int:
    from search.study import check_saved_spec, read_sweep_file

    spec, raw = read_sweep_file(args.sweep_file, _overrides(args))  # every mistake stops here (exit 2)
    _preflight(spec)
    check_saved_spec(spec)  # and a changed shape of an existing sweep too
    return _drive(spec, raw, args)


def _resume(args: argparse.Namespace) -> int:
    from search.study import SAVED_SPEC, check_saved_spec, read_sweep_file

    path = as_path(args.root or "sweeps") / args.name / SAVED_SPEC
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no sweep {args.name!r} here (start it with `humanlike sweep run FILE`)")
    overrides = {"root": str(path.parent.parent), "name": args.name, **_overrides(args)}
    spec, raw = read_sweep_file(path, overrides)
    _preflight(spec)
    check_saved_spec(spec)
    return _drive(spec, raw, args)


def _preflight(spec) -> None:
    """What the sweep file cannot show: the database URL's variable is set and the database answers, the bucket
    exists (SweepError, exit 2, before Ray starts and before anything is written)."""
    from search.spec import resolve_storage
    from search.storage import probe
    from search.study import open_storage

    if resolve_storage(spec) is not None:
        open_storage(spec)  # connects once: a wrong host or password stops here (the message is redacted)
    probe(spec.dir())


def _drive(spec, raw, args: argparse.Namespace) -> int:
    from search.driver import run_sweep
    from search.report import best_text
    from search.results import read_results

    outcome = run_sweep(spec, raw, address=args.address, num_cpus=args.num_cpus, echo=_echo,
                        retry_failed=args.retry_failed, live=sys.stdout.isatty())
    counts = ", ".join(f"{s} {n}" for s, n in outcome.counts.items() if n)
    print(f"sweep {spec.name}: {counts or 'no trials'}; results in {spec.dir() / 'results'}")
    if outcome.reused:
        print(f"{outcome.reused} of the trials of this run proposed a configuration that had finished already: "
              "its result reused, nothing trained (the sampler chooses from lists; results column reused_from)")
    print("most human-like configurations:")
    print(best_text(read_results(spec.dir()), 3))
    if outcome.aborted:
        print(f"stopped early: {outcome.aborted}; fix the cause, then run the same command with --retry-failed "
              "(the failed trials run again and stop counting towards n_trials)", file=sys.stderr)
        return 1
    if outcome.interrupted:
        print(f"interrupted: continue with `{spec.resume_command()}` (or run the same command "
              "again)", file=sys.stderr)
        return 130
    return 1 if outcome.problems else 0


def _echo(line: str) -> None:
    print(line, flush=True)


# --- inspection ---------------------------------------------------------------------------------------------------


def _saved(args: argparse.Namespace, name: str | None = None):
    """The sweep's spec (args.name, or another sweep of the same root) from the copy in its directory (no dataset
    check: inspection needs no data)."""
    from search.study import load_saved_spec

    return load_saved_spec(as_path(args.root or "sweeps") / (name or args.name))


def _status(args: argparse.Namespace) -> int:
    from search.report import status_text
    from search.study import load_study, state_counts

    from search.progress import progress_lines

    from search.rescore import ranked_results

    spec = _saved(args)
    (df, note), study = ranked_results(spec.dir()), load_study(spec)
    print(status_text(df, name=spec.name, n_trials=spec.n_trials))
    if note:
        print(note)
    lines = progress_lines(spec, study, df)  # each running trial's stage and epoch and the ETA, or "stopped"
    for line in lines:
        print(line)
    if not lines and (waiting := state_counts(study).get("WAITING", 0)):
        print(f"in the study: {waiting} configurations waiting (enqueued, they run first on the next run)")
    return 0


def _best(args: argparse.Namespace) -> int:
    from search.report import best_text

    if args.top < 1:
        raise ValueError(f"--top: must be >= 1, got {args.top}")
    from search.rescore import ranked_results

    spec = _saved(args)
    df, note = ranked_results(spec.dir())
    if note:
        print(note)
    print(best_text(df, args.top))
    return 0


def _budget(spec) -> str:
    """The training budget of a sweep's trials (as they trained: search.study.resolved_train), as its figures name
    it."""
    from models.config import build_config
    from search.study import resolved_train

    cfg = resolved_train(spec)
    base = build_config({k: spec.train[k] for k in ("preset", "data") if k in spec.train})
    sizes = [f"{label} {mine}" for label, mine, preset in (
        ("latent", cfg.latent_size, base.latent_size), ("RAE width", cfg.rae.width, base.rae.width),
        ("LDM width", cfg.ldm.width, base.ldm.width)) if mine != preset]  # network sizes the sweep file changed
    return (f"preset {cfg.preset or 'none'}: RAE {cfg.rae.epochs} + LDM {cfg.ldm.epochs} epochs"
            + (f" ({', '.join(sizes)})" if sizes else ""))


def _report(args: argparse.Namespace) -> int:
    from search.report import write_report
    from search.rescore import combined_results, ranked_results
    from search.study import load_study

    spec = _saved(args)
    out = Path(args.out) if args.out else spec.dir() / "report"
    if not isinstance(out, Path):  # figures are drawn into a local directory
        out = Path(f"{spec.name}-report")
    data_dir = (spec.train.get("data") or {}).get("data_dir")  # else $HUMANLIKE_DATA_DIR (Figure 2's exemplars)
    if args.with_sweeps:  # the others' saved specs are read first, so a wrong name fails before anything is drawn
        others = [_saved(args, name) for name in args.with_sweeps]
        df, notes = combined_results([spec.dir(), *(o.dir() for o in others)])
        study, name = None, " + ".join([spec.name, *args.with_sweeps])  # importance is a single study's
    else:
        df, note = ranked_results(spec.dir())
        notes = [note] if note else []
        study, name = load_study(spec), spec.name
    for note in notes:
        print(note)
    for path in write_report(df, out, study=study, name=name, data_dir=data_dir, budget=_budget(spec)):
        print(path)
    return 0


def _rescore(args: argparse.Namespace) -> int:
    import torch

    from evaluation.critics import load_critics
    from search.rescore import rescore_sweep

    torch.set_num_threads(args.threads)
    spec = _saved(args)
    critics = load_critics(args.critics or spec.dataset)
    counts = rescore_sweep(spec.dir(), critics, data_dir=args.data_dir, force=args.force)
    print(f"sweep {spec.name}: {counts['rescored']} trials re-scored with critics {critics.hash}, "
          f"{counts['skipped']} already were, {counts['missing']} without stored samples")
    return 0


def _export(args: argparse.Namespace) -> int:
    from search.results import export

    spec = _saved(args)
    n = export(spec.dir(), args.out)
    print(f"{n} trials -> {args.out}")
    return 0
