"""Benchmark: the cost of evaluating one model on every test class, and what DDIM changes against DDPM.

    python bench/bench_eval.py RUN_DIR [--data-dir D] [--critics C] [--samplers ddpm,ddim50,ddim100] [--seed 0]

For each sampler it times generation (as many samples per class as the human reference: 150 x 19 on Omniglot)
and scoring (the critics, originality, recognizability, distance to human), then prints how far DDIM's
originality and recognizability land from DDPM's. The issue's targets: a whole DDIM-50 evaluation under one
minute on 2 cores, and DDIM within 0.03 of DDPM on both axes (if not, DDPM stays the default).
Nothing is written into the run directory.
"""
from __future__ import annotations

import argparse
import time

TARGET_DDIM50_S = 60.0
TARGET_DELTA = 0.03


def parse_sampler(text: str) -> tuple[str, int | None]:
    """'ddpm' -> ('ddpm', None); 'ddim50' -> ('ddim', 50)."""
    if text == "ddpm":
        return "ddpm", None
    if text.startswith("ddim") and text[4:].isdigit():
        return "ddim", int(text[4:])
    raise ValueError(f"--samplers: {text!r} is neither 'ddpm' nor 'ddim<steps>'")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir")
    p.add_argument("--data-dir")
    p.add_argument("--critics", help="critics directory or dataset name (default: the run's dataset)")
    p.add_argument("--samplers", default="ddpm,ddim50,ddim100")
    p.add_argument("--guidance", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)

    import os

    import torch

    torch.set_num_threads(args.threads)
    from evaluation.critics import load_critics
    from evaluation.evaluate import evaluate_samples
    from evaluation.human import human_points, test_source
    from evaluation.run_eval import check_critics_match, check_latent_sizes, samples_per_class
    from models.data import load_dataset
    from models.generate import generate
    from models.run import load_run

    samplers = [parse_sampler(s.strip()) for s in args.samplers.split(",") if s.strip()]
    run = load_run(args.run_dir)
    dataset = run.config.data.dataset
    critics = load_critics(args.critics or dataset)
    check_critics_match(critics, dataset)
    data = load_dataset(dataset, data_dir=args.data_dir or run.config.data.data_dir)
    check_critics_match(critics, dataset, data.fingerprint())
    check_latent_sizes(run.config, run.ae, run.ldm, args.run_dir)
    human = human_points(critics, data)[test_source(dataset)]
    per_class = samples_per_class(data.test_labels, len(data.test_exemplars))
    print(f"run {args.run_dir} ({dataset}, latent {run.config.latent_size}); critics {critics.hash}; "
          f"{len(data.test_exemplars)} classes x {per_class} samples; torch threads {torch.get_num_threads()}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"human point: originality {human['originality']:.4f}, recognizability {human['recognizability']:.4f}")
    rows = []
    for sampler, steps in samplers:
        t0 = time.perf_counter()
        samples = generate(run.ae, run.ldm, data.test_exemplars, per_class=per_class, sampler=sampler, steps=steps,
                           guidance=args.guidance, seed=args.seed)
        t1 = time.perf_counter()
        r = evaluate_samples(samples, data.test_exemplars, critics, human)
        t2 = time.perf_counter()
        name = sampler if steps is None else f"{sampler}-{steps}"
        rows.append((name, t1 - t0, t2 - t1, r))
        print(f"{name:>9}: generate {t1 - t0:7.1f} s  score {t2 - t1:5.1f} s  total {t2 - t0:7.1f} s  "
              f"originality {r['originality']:.4f}  recognizability {r['recognizability']:.4f}  "
              f"distance {r['distance_to_human']:.4f}", flush=True)
    base = next((row for row in rows if row[0] == "ddpm"), None)
    if base is not None:
        for name, gen_s, score_s, r in rows:
            if name == "ddpm":
                continue
            do = r["originality"] - base[3]["originality"]
            dr = r["recognizability"] - base[3]["recognizability"]
            ok = abs(do) <= TARGET_DELTA and abs(dr) <= TARGET_DELTA
            print(f"{name} vs ddpm: originality {do:+.4f}, recognizability {dr:+.4f} "
                  f"({'within' if ok else 'NOT within'} {TARGET_DELTA}); speed-up x{base[1] / gen_s:.1f}")
    for name, gen_s, score_s, _ in rows:
        if name == "ddim-50":
            total = gen_s + score_s
            print(f"ddim-50 whole evaluation {total:.1f} s: {'under' if total < TARGET_DDIM50_S else 'OVER'} "
                  f"the {TARGET_DDIM50_S:.0f} s target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
