"""Benchmark: do two critic pairs trained with the same recipe and different seeds rank sample sets alike? (issue 11)

    python bench/bench_critic_agreement.py CRITICS_A CRITICS_B [--runs RUN_DIR ...] [--data-dir D]
        [--out bench/critic_agreement]

Scores a fixed list of sample sets with both pairs, each pair measuring distance to its own held-out human point:
the reference generators of evaluation/references.py (copy, noise, human, other, jitter, blur1, blur2, stroke+1,
stroke-1), Lake et al. 2015's people (their own 50 targets), and graded stand-ins for models of different quality
(human drawings with 25% / 50% of each class's drawings taken from another class, wobbled by a 2-px elastic
warp, blended with 30% noise, and the exemplar redrawn by a 2-px elastic warp and a stroke change), plus the
stored samples (evaluation_*.npz) of any trained runs given with --runs (named by their directory and file;
docs/critics.md lists the 18 runs measured). Prints the Spearman rank correlation of
the distances (target >= 0.9) and how far apart the two human points are (target < 0.05 in relative distance),
and writes OUT.json and OUT.png.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TARGET_SPEARMAN = 0.9
TARGET_HUMAN = 0.05


def sample_sets(imageset, seed: int = 0) -> dict:
    """{name: (samples (C, K, 48, 48), exemplars (C, 48, 48))} on the test classes: references + graded sets."""
    import torch

    from evaluation import references as ref

    human = ref.grouped(imageset.test_images, imageset.test_labels, len(imageset.test_exemplars))
    ex = imageset.test_exemplars
    sets = {name: (s, ex) for name, s in ref.reference_sets(ex, human, seed=seed).items()}
    g = torch.Generator().manual_seed(seed)
    other = ref.other_class(human)
    k = human.shape[1]
    for frac in (0.25, 0.5):
        mixed = human.clone()
        mixed[:, : round(frac * k)] = other[:, : round(frac * k)]
        sets[f"other{round(frac * 100)}%"] = (mixed, ex)
    flat = human.reshape(-1, 1, 48, 48)
    sets["elastic2"] = (ref.elastic(flat, amplitude_px=2.0, generator=g).view_as(human), ex)
    sets["noise30%"] = (0.7 * human + 0.3 * torch.rand(human.shape, generator=g), ex)
    copies = ref.copy(ex, k).reshape(-1, 1, 48, 48)
    wobbly = ref.random_stroke_width(ref.elastic(copies, amplitude_px=2.0, generator=g), p=1.0, generator=g)
    sets["exemplar-elastic2"] = (wobbly.view_as(human), ex)
    return sets


def run_sets(run_dirs: list[str]) -> dict:
    """{run name: samples (C, K, 48, 48)} from each run's evaluation_*.npz files."""
    import numpy as np
    import torch

    out = {}
    for d in run_dirs:
        for f in sorted(Path(d).glob("evaluation_*.npz")):
            out[f"{str(d).rstrip('/').removesuffix('/run')}:{f.stem}"] = torch.from_numpy(np.load(f)["samples"])
    return out


def score_all(critics, imageset, sets: dict, runs: dict, data_dir) -> dict:
    from evaluation.evaluate import evaluate_samples
    from evaluation.human import human_point_of, lake2015_point
    from evaluation.metrics import distance_to_human

    h = human_point_of(critics, imageset)
    points = {name: evaluate_samples(s, ex, critics) for name, (s, ex) in sets.items()}
    points.update({name: evaluate_samples(s, imageset.test_exemplars, critics) for name, s in runs.items()})
    points["lake2015"] = lake2015_point(critics, data_dir)
    table = {}
    for name, p in points.items():
        table[name] = {"originality": p["originality"], "recognizability": p["recognizability"],
                       "distance_to_human": distance_to_human(p["originality"], p["recognizability"],
                                                              h["originality"], h["recognizability"])}
    return {"critics_hash": critics.hash, "human": {"originality": h["originality"],
                                                    "recognizability": h["recognizability"]}, "sets": table}


def figure(a: dict, b: dict, out: Path, title: str = "same recipe, two seeds") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(a["sets"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    da = [a["sets"][n]["distance_to_human"] for n in names]
    db = [b["sets"][n]["distance_to_human"] for n in names]
    ax = axes[0]
    ax.scatter(da, db)
    for n, x, y in zip(names, da, db):
        ax.annotate(n, (x, y), fontsize=7)
    top = max(da + db) * 1.05
    ax.plot([0, top], [0, top], lw=0.5, color="grey")
    ax.set(xscale="symlog", yscale="symlog", xlabel=f"distance to human, critics {a['critics_hash']}",
           ylabel=f"distance to human, critics {b['critics_hash']}", title=title)
    ax = axes[1]
    for res, marker in ((a, "o"), (b, "x")):
        o = [res["sets"][n]["originality"] / res["human"]["originality"] for n in names]
        r = [res["sets"][n]["recognizability"] / res["human"]["recognizability"] for n in names]
        ax.scatter(o, r, marker=marker, label=res["critics_hash"])
    for n in names:
        ax.annotate(n, (a["sets"][n]["originality"] / a["human"]["originality"],
                        a["sets"][n]["recognizability"] / a["human"]["recognizability"]), fontsize=7)
    ax.scatter([1], [1], marker="*", s=200, color="k", label="human")
    ax.set(xlabel="originality / human", ylabel="recognizability / human", title="both planes, in human units")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("critics_a")
    p.add_argument("critics_b")
    p.add_argument("--runs", nargs="*", default=[], help="trained run directories with evaluation_*.npz samples")
    p.add_argument("--data-dir")
    p.add_argument("--out", default="bench/critic_agreement", help="prefix of the .json and .png written")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--title", default="same recipe, two seeds", help="the figure's title for the two pairs")
    args = p.parse_args(argv)

    import torch
    from scipy.stats import spearmanr

    from evaluation.critics import load_critics
    from evaluation.metrics import distance_to_human
    from models.data import load_dataset, resolve_data_dir

    torch.set_num_threads(args.threads)
    imageset = load_dataset("omniglot", data_dir=args.data_dir)
    data_dir = resolve_data_dir(args.data_dir)[0]
    sets, runs = sample_sets(imageset), run_sets(args.runs)
    a, b = (score_all(load_critics(c), imageset, sets, runs, data_dir) for c in (args.critics_a, args.critics_b))
    names = list(a["sets"])
    rho = spearmanr([a["sets"][n]["distance_to_human"] for n in names],
                    [b["sets"][n]["distance_to_human"] for n in names]).statistic
    rho_o = spearmanr([a["sets"][n]["originality"] for n in names], [b["sets"][n]["originality"] for n in names]).statistic
    rho_r = spearmanr([a["sets"][n]["recognizability"] for n in names],
                      [b["sets"][n]["recognizability"] for n in names]).statistic
    # the two human points in one plane: B's point in A's human units (each pair's originality has its own unit s,
    # so the comparison is of the ratios to the human values that the distance uses, and of the raw values)
    human_gap = distance_to_human(b["human"]["originality"], b["human"]["recognizability"],
                                  a["human"]["originality"], a["human"]["recognizability"])
    lake_gap = abs(a["sets"]["lake2015"]["distance_to_human"] - b["sets"]["lake2015"]["distance_to_human"])
    print(f"{'set':>18}  {'o A':>6} {'r A':>6} {'d A':>6}   {'o B':>6} {'r B':>6} {'d B':>6}")
    for n in names:
        pa, pb = a["sets"][n], b["sets"][n]
        print(f"{n:>18}  {pa['originality']:6.3f} {pa['recognizability']:6.3f} {pa['distance_to_human']:6.3f}   "
              f"{pb['originality']:6.3f} {pb['recognizability']:6.3f} {pb['distance_to_human']:6.3f}")
    print(f"{len(names)} sample sets; Spearman of distance to human {rho:.3f} (target >= {TARGET_SPEARMAN}); "
          f"originality {rho_o:.3f}, recognizability {rho_r:.3f}")
    print(f"human points: A ({a['human']['originality']:.3f}, {a['human']['recognizability']:.3f}), "
          f"B ({b['human']['originality']:.3f}, {b['human']['recognizability']:.3f}); relative distance between "
          f"them {human_gap:.3f} (target < {TARGET_HUMAN}); Lake 2015 distance differs by {lake_gap:.3f}")
    summary = {"spearman_distance": rho, "spearman_originality": rho_o, "spearman_recognizability": rho_r,
               "human_point_gap": human_gap, "lake2015_distance_gap": lake_gap, "n_sets": len(names),
               "targets": {"spearman": TARGET_SPEARMAN, "human_point_gap": TARGET_HUMAN},
               "runs": args.runs, "a": a, "b": b}
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    figure(a, b, out.with_suffix(".png"), args.title)
    print(f"written: {out.with_suffix('.json')}, {out.with_suffix('.png')}")
    return 0 if rho >= TARGET_SPEARMAN and human_gap < TARGET_HUMAN else 1


if __name__ == "__main__":
    sys.exit(main())
