"""Check (docs/critics.md, "The missed target"): is the Lake et al. 2015 point's distance from the held-out human
point an artefact of how those drawings were rendered?

`humanlike human-point` reads the people's drawings from img_people/*.png (210 x 210, drawn on a larger canvas than
Omniglot's 105 px images). The same repository's nov4_draw_new_examples_ready.mat holds each of those drawings
rendered at 105 x 105 like the Omniglot images (`images`: 50 targets x 18 slots, 9 filled, ink = 1). This scores
both renderings with the same critics against the same exemplars, and prints the ink statistics
(evaluation/ink.py) beside them.

    OMP_WAIT_POLICY=PASSIVE python bench/lake_rendering.py [--critics omniglot]
"""
from __future__ import annotations

import argparse
import json
import os


def mat_drawings(data_dir, n_targets: int, per_target: int):
    """The people's drawings from the .mat file, (targets, per_target, 48, 48) uint8 ink = 255, target order."""
    import numpy as np
    import scipy.io

    from evaluation.lake2015 import lake2015_dir, read_targets
    from models.data.raster import ink_to_uint8

    mat = scipy.io.loadmat(lake2015_dir(data_dir) / "judge_new_instances" / "nov4_draw_new_examples_ready.mat")
    out = []
    for row in read_targets(data_dir):
        cell = mat["images"][int(row["target_index"]) - 1, 0]
        filled = [cell[j, 0] for j in range(cell.shape[0]) if cell[j, 0].size]
        if len(filled) != per_target:
            raise ValueError(f"target {row['target_index']}: {len(filled)} drawings in the .mat, {per_target} PNGs")
        out.append(np.stack(filled))
    ink = np.stack(out).astype(np.float32).reshape(-1, 105, 105)  # 1 = ink
    return ink_to_uint8(1.0 - ink, invert=True).view(n_targets, per_target, 48, 48)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--critics", default="omniglot")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    import torch

    from evaluation.critics import load_critics
    from evaluation.evaluate import evaluate_samples
    from evaluation.human import human_points, test_source
    from evaluation.ink import ink_stats
    from evaluation.lake2015 import load_lake2015
    from models.data import load_dataset
    from models.data.load import resolve_data_dir

    torch.set_num_threads(args.threads)
    data_dir = resolve_data_dir(os.environ.get("HUMANLIKE_DATA_DIR"))[0]
    critics = load_critics(args.critics)
    omniglot = load_dataset("omniglot", data_dir=data_dir)
    test = human_points(critics, omniglot)[test_source("omniglot")]
    lake = load_lake2015(data_dir)
    png = lake.drawings
    mat = mat_drawings(data_dir, *png.shape[:2])
    a, b = png.flatten(2).float(), mat.flatten(2).float()
    cos = torch.nn.functional.cosine_similarity(a, b, dim=2).mean()
    print(json.dumps({"critics": critics.hash, "human": {k: round(test[k], 4) for k in ("originality", "recognizability")},
                      "png_vs_mat_cosine": round(float(cos), 3)}))
    for name, images in (("omniglot held-out", omniglot.test_images), ("png (humanlike)", png), ("mat 105 px", mat)):
        row = {"drawings": name, **{k: round(v, 3) for k, v in ink_stats(images.reshape(-1, 48, 48)).items()}}
        if name != "omniglot held-out":
            r = evaluate_samples(images, lake.exemplars, critics, human_point=test)
            row |= {k: round(r[k], 4) for k in ("originality", "recognizability", "distance_to_human")}
        print(json.dumps(row))


if __name__ == "__main__":
    main()
