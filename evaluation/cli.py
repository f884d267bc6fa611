"""`humanlike critics train | human-point | evaluate | maps | figure`: registered by search/cli.py.

Handlers import torch and the evaluation modules lazily, so `humanlike --help` stays instant.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from models.data.load import DATASETS  # the registries' own name lists: no torch for --help
from models.diffusion.guidance import RULES as GUIDANCE_RULES
from models.diffusion.samplers import NAMES as DIFFUSION_SAMPLERS


def register(sub: argparse._SubParsersAction) -> None:
    _register_critics(sub)
    _register_human_point(sub)
    _register_evaluate(sub)
    _register_maps(sub)
    _register_figure(sub)


def _data_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="dataset directory (default: $HUMANLIKE_DATA_DIR, then the download cache)")


def _critics_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--critics", help="critics directory or dataset name (default: the shipped critics of the dataset)")


def _register_critics(sub) -> None:
    p = sub.add_parser("critics", help="train the evaluation critics of a dataset",
                       description="The originality (SimCLR) and recognizability (ProtoNet) critics.")
    csub = p.add_subparsers(dest="critics_command", required=True, metavar="ACTION")
    t = csub.add_parser("train", help="train both critics on the training classes, write weights + manifest",
                        description="Train both critics on the dataset's training classes only, score them on the "
                        "test classes, and write critics.pt + manifest.json into --out.")
    t.add_argument("--dataset", required=True, choices=DATASETS)
    _data_dir_arg(t)
    t.add_argument("--out", help="output directory (default: evaluation/critics/<dataset>, the shipped location)")
    t.add_argument("--recipe", default="default",
                   help="a named recipe of evaluation/critic_training.py RECIPES (default: the shipped critics'; "
                   "quick: a smoke run), or a YAML file of recipe fields that replace the default's, e.g. "
                   "'proto: {steps: 7000, label_smoothing: 0}'")
    t.add_argument("--keep-lake2015", action="store_true",
                   help="Omniglot: also train on the 46 Lake et al. 2015 target characters (left out by default, "
                   "so that the second human point is scored on classes the critics never saw)")
    t.add_argument("--force", action="store_true", help="replace critics already in --out")
    t.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    t.add_argument("--seed", type=int, default=None,
                   help="seed of both critics (default: the recipe's, 0 unless a recipe file sets one per critic)")
    t.add_argument("--reuse-simclr", metavar="DIR",
                   help="take the SimCLR critic of these critics instead of training it again (its recipe, seed, "
                   "threshold and excluded classes must be this run's; the manifest names where it came from)")
    t.add_argument("--reuse-proto", metavar="DIR",
                   help="the same for the prototypical (recognizability) critic")
    t.set_defaults(handler=_critics_train)
    r = csub.add_parser("references", help="score the reference sample sets (copy, noise, jitter, blur, ...)",
                        description="Where the reference generators of evaluation/references.py land with these "
                        "critics: originality, recognizability and distance to the held-out human point.")
    r.add_argument("--dataset", required=True, choices=DATASETS)
    _data_dir_arg(r)
    _critics_arg(r)
    r.add_argument("--seed", type=int, default=0, help="seed of the random references (default 0)")
    r.add_argument("--json", action="store_true", help="print the table as JSON")
    r.set_defaults(handler=_critics_references)


def _register_human_point(sub) -> None:
    p = sub.add_parser("human-point", help="compute (or read from cache) the human point(s) of a dataset",
                       description="Score the held-out human drawings of the test classes (and, for Omniglot, "
                       "Lake et al. 2015's new exemplars) with the critics; cached per critics hash.")
    p.add_argument("--dataset", required=True, choices=DATASETS)
    _data_dir_arg(p)
    _critics_arg(p)
    p.add_argument("--refresh", action="store_true", help="recompute even if cached")
    p.add_argument("--json", action="store_true", help="print the points as JSON")
    p.set_defaults(handler=_human_point)


def _register_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="generate samples for every test class and score a trained run",
                       description="Generate, for every test class, as many samples as the human reference has, "
                       "score originality, recognizability and distance to human, and write them as JSON in the "
                       "run directory (with the samples as .npz).")
    p.add_argument("run_dir")
    p.add_argument("--sampler", choices=DIFFUSION_SAMPLERS,
                   help="default: ddpm over every timestep (SPEC part 0), whatever sampler drew the run's samples.png")
    p.add_argument("--steps", type=int, help="sampler steps (DDIM; default: the run's sample config's when it "
                   "samples with DDIM; DDPM runs every timestep)")
    p.add_argument("--guidance", type=float, help="classifier-free guidance weight w (default: the run's, 1.0)")
    p.add_argument("--guidance-rule", choices=GUIDANCE_RULES,
                   help="how the guidance is applied: cfg (the paper's) or projected (ours; docs/recipe.md); "
                   "default: the run's, cfg")
    p.add_argument("--seed", type=int, default=0, help="generation seed (default 0)")
    p.add_argument("--normalization", choices=("relative", "absolute"), default="relative")
    _data_dir_arg(p)
    _critics_arg(p)
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--device", default="auto",
                   help="where sampling and the critics compute: auto (a GPU if torch sees one), cpu, cuda, cuda:N")
    p.set_defaults(handler=_evaluate)


def _register_maps(sub) -> None:
    p = sub.add_parser("maps", help="feature importance maps of a trained LDM (SPEC section 7)",
                       description="Feature importance maps of a run's LDM for chosen test classes, saved as .npz "
                       "and PNG heatmaps; with --compare, Spearman rank correlations with another run's maps.")
    p.add_argument("run_dir")
    p.add_argument("--classes", default="0,1,2,3,4", help="comma-separated test class indices (default 0-4)")
    p.add_argument("--samples", type=int, default=4, help="samples per class (default 4)")
    p.add_argument("--records", type=int, default=100, help="denoising steps that contribute (default 100)")
    p.add_argument("--guidance", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=59, help="sampling seed (LM used 59)")
    p.add_argument("--compare", help="a second run directory: compare its maps with these (Spearman)")
    p.add_argument("--out", help="output directory (default: RUN_DIR/maps)")
    _data_dir_arg(p)
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(handler=_maps)


def _register_figure(sub) -> None:
    p = sub.add_parser("figure", help="the paper's Figure 3 or Figure 2 from evaluated runs",
                       description="fig3: originality vs recognizability of evaluation JSONs, one colour per "
                       "regularizer, human points as stars, a parametric fit per regularizer. fig2: exemplar rows "
                       "with samples from several evaluated runs.")
    p.add_argument("which", choices=("fig3", "fig2"))
    p.add_argument("inputs", nargs="+", help="evaluation JSON files or run directories (their newest evaluation)")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--classes", default="0,1,2,3,4,5", help="fig2: test class indices shown (default 0-5)")
    p.add_argument("--per-row", type=int, default=6, help="fig2: samples shown per run and class")
    _data_dir_arg(p)
    p.set_defaults(handler=_figure)


# ---- handlers ----

def _threads(n: int | None) -> None:
    import torch

    if n:
        torch.set_num_threads(n)


def _load_dataset(name: str, data_dir: str | None):
    from models.data import load_dataset

    return load_dataset(name, data_dir=data_dir)


def _critics_train(args) -> int:
    from evaluation.critic_training import recipe_from_arg, train_critics
    from evaluation.critics import SHIPPED_DIR, WEIGHTS_FILE, save_critics

    recipe = recipe_from_arg(args.recipe)
    out = Path(args.out) if args.out else SHIPPED_DIR / args.dataset
    if (out / WEIGHTS_FILE).exists() and not args.force:
        raise ValueError(f"{out}: critics already there; pass --force to replace them or --out for another place")
    _threads(args.threads)
    imageset = _load_dataset(args.dataset, args.data_dir)
    exclude = ()
    if args.dataset == "omniglot" and not args.keep_lake2015:
        from evaluation.lake2015 import lake2015_classes
        from models.data import resolve_data_dir

        exclude = tuple(c for c in lake2015_classes(resolve_data_dir(args.data_dir)[0]) if c in imageset.train_classes)
    from evaluation.critics import load_critics

    reused = {f"{part}_from": load_critics(src) if src else None
              for part, src in (("simclr", args.reuse_simclr), ("proto", args.reuse_proto))}
    if args.seed is not None:
        recipe = recipe.with_seed(args.seed)
    critics = train_critics(imageset, recipe, exclude_classes=exclude,
                            log=lambda m: print(m, file=sys.stderr, flush=True), **reused)
    save_critics(critics, out)
    m = critics.manifest
    print(f"critics {m['critics_hash']} -> {out}")
    print(json.dumps({"heldout": m["heldout"], "training": {k: m["training"][k] for k in
                                                           ("simclr_seconds", "proto_seconds")}}, indent=2))
    return 0


def _critics_references(args) -> int:
    from evaluation.critics import load_critics
    from evaluation.human import lake2015_point
    from evaluation.references import grouped, score_references
    from models.data import resolve_data_dir

    critics = load_critics(args.critics or args.dataset)
    imageset = _load_dataset(args.dataset, args.data_dir)
    extra = {}
    if args.dataset == "omniglot":
        extra["lake2015"] = lake2015_point(critics, resolve_data_dir(args.data_dir)[0])
    human = grouped(imageset.test_images, imageset.test_labels, len(imageset.test_exemplars))
    table = score_references(critics, imageset.test_exemplars, human, seed=args.seed, extra=extra)
    if args.json:
        print(json.dumps({"critics_hash": critics.hash, "references": table}, indent=2))
        return 0
    print(f"critics {critics.hash} ({critics.dataset}); distance to the held-out human point (relative)")
    print(f"{'set':>10}  {'originality':>11}  {'recognizability':>15}  {'distance':>8}")
    for name, p in table.items():
        print(f"{name:>10}  {p['originality']:11.3f}  {p['recognizability']:15.3f}  {p['distance_to_human']:8.3f}")
    return 0


def _human_point(args) -> int:
    from evaluation.critics import load_critics
    from evaluation.human import human_points
    from models.data import resolve_data_dir

    critics = load_critics(args.critics or args.dataset)
    imageset = _load_dataset(args.dataset, args.data_dir)
    points = human_points(critics, imageset, data_dir=resolve_data_dir(args.data_dir)[0], refresh=args.refresh)
    if args.json:
        print(json.dumps(points, indent=2, sort_keys=True))
        return 0
    print(f"critics {critics.hash} ({critics.dataset}), threshold {critics.threshold}, "
          f"originality unit s = {critics.normalizer:.4f}")
    for source, p in points.items():
        print(f"{source:>16}: originality {p['originality']:.4f}  recognizability {p['recognizability']:.4f}  "
              f"({p['n_classes']} classes, {p['n_samples']} drawings)")
    return 0


def _evaluate(args) -> int:
    from evaluation.ink import describe
    from evaluation.run_eval import evaluate_run

    _threads(args.threads)
    result, path = evaluate_run(args.run_dir, sampler=args.sampler, steps=args.steps, guidance=args.guidance,
                                guidance_rule=args.guidance_rule, seed=args.seed, critics=args.critics,
                                data_dir=args.data_dir, normalization=args.normalization, device=args.device,
                                log=lambda m: print(m, file=sys.stderr, flush=True))
    print(f"originality {result['originality']:.4f}  recognizability {result['recognizability']:.4f}  "
          f"distance to human {result['distance_to_human']:.4f} ({result['normalization']})")
    print(describe(result["ink"]["samples"]["grey_share"], result["ink"]["human"]["grey_share"],
                   result["stage_ceilings"]["ae"]["grey_share"]))
    print(f"written: {path}")
    return 0


def _parse_ints(text: str, name: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError as e:
        raise ValueError(f"{name}: expected comma-separated integers, got {text!r}") from e


def _maps(args) -> int:
    from evaluation.maps import maps_for_run

    _threads(args.threads)
    summary = maps_for_run(args.run_dir, classes=_parse_ints(args.classes, "--classes"), samples=args.samples,
                           records=args.records, guidance=args.guidance, seed=args.seed, compare=args.compare,
                           out=args.out, data_dir=args.data_dir)
    print(json.dumps(summary, indent=2))
    return 0


def _figure(args) -> int:
    from evaluation.figures import figure_from_files

    path = figure_from_files(args.which, args.inputs, args.out, classes=_parse_ints(args.classes, "--classes"),
                             per_row=args.per_row, data_dir=args.data_dir)
    print(f"written: {path}")
    return 0
