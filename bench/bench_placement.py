"""Check (docs/critics.md, "Placement"): how much of a critic pair's originality is where on the canvas a drawing
sits, and is that what separates the two human references?

Prints, for each critics directory given:
- the originality of the test exemplars moved by k = 1..6 whole pixels (up, down, left, right: zero fill), as a
  share of the held-out human drawings' originality (a moved copy is still a copy);
- the held-out human point, the Lake et al. 2015 point and its distance to the held-out one;
and, once, where the drawings sit: the distance in pixels between the centre of mass of each drawing's ink and its
exemplar's (held-out drawings against their medoid, Lake's people against the target they were shown).

    OMP_WAIT_POLICY=PASSIVE python bench/bench_placement.py omniglot-v3 omniglot [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os

SHIFTS = (1, 2, 3, 4, 5, 6)


def offsets(drawings, exemplars) -> dict:
    """Pixels between each drawing's ink centre and its exemplar's: mean, median, and the mean offset (row, col)."""
    from evaluation.networks import ink_centre

    d = ink_centre(drawings.double()) - ink_centre(exemplars.double())  # (N, 2)
    dist = d.norm(dim=1)
    return {"mean_px": round(dist.mean().item(), 2), "median_px": round(dist.median().item(), 2),
            "mean_offset_row_col": [round(v, 2) for v in d.mean(0).tolist()], "n": len(d)}


def moved(exemplars, k: int):
    """(C, 4, H, W): each exemplar moved k pixels down, right, up and left (zero fill, no wrap-around)."""
    import torch
    import torch.nn.functional as F

    p = F.pad(exemplars, (k, k, k, k))
    h, w = exemplars.shape[-2:]
    crops = [p[:, : h, k : k + w], p[:, k : k + h, : w], p[:, 2 * k :, k : k + w], p[:, k : k + h, 2 * k :]]
    return torch.stack(crops, dim=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("critics", nargs="+", help="critics directories or shipped names (omniglot, omniglot-v3)")
    p.add_argument("--data-dir")
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()

    import torch

    from evaluation.critics import load_critics
    from evaluation.evaluate import evaluate_samples
    from evaluation.human import human_point_of, lake2015_point
    from evaluation.lake2015 import load_lake2015
    from evaluation.distance import distance_to_human
    from models.data import load_dataset, resolve_data_dir

    torch.set_num_threads(args.threads)
    critics = [load_critics(c) for c in args.critics]  # a wrong name fails before the data is read
    data_dir = resolve_data_dir(args.data_dir)[0]
    om = load_dataset("omniglot", data_dir=data_dir)
    lake = load_lake2015(data_dir)
    out = {"placement": {
        "heldout_vs_medoid": offsets(om.test_images, om.test_exemplars[om.test_labels]),
        "lake2015_vs_target": offsets(lake.drawings.flatten(0, 1), lake.exemplars.repeat_interleave(9, 0))},
        "critics": {}}
    for name, v in out["placement"].items():
        print(f"{name:>20}: ink centre {v['mean_px']} px from the exemplar's on average (median {v['median_px']}; "
              f"mean offset row/col {v['mean_offset_row_col']}; {v['n']} drawings)")
    for arg, c in zip(args.critics, critics):
        human = human_point_of(c, om)
        lk = lake2015_point(c, data_dir)
        row = {"hash": c.hash, "human": [human["originality"], human["recognizability"]],
               "lake2015": [lk["originality"], lk["recognizability"]],
               "lake2015_distance": distance_to_human(lk["originality"], lk["recognizability"],
                                                      human["originality"], human["recognizability"]),
               "moved_exemplar_share_of_human_originality": {}}
        for k in SHIFTS:
            r = evaluate_samples(moved(om.test_exemplars, k), om.test_exemplars, c)
            row["moved_exemplar_share_of_human_originality"][k] = round(r["originality"] / human["originality"], 3)
        out["critics"][arg] = row
        shares = ", ".join(f"{k} px {v:.2f}" for k, v in row["moved_exemplar_share_of_human_originality"].items())
        print(f"{arg} ({c.hash}): human {human['originality']:.4f} / {human['recognizability']:.4f}, Lake 2015 "
              f"{lk['originality']:.4f} / {lk['recognizability']:.4f}, distance {row['lake2015_distance']:.3f}")
        print(f"    the exemplar moved, originality / human's: {shares}")
    if args.json:
        from models.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    main()
