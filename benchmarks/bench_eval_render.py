"""Evaluation time with rendering: 1,000 (prediction, reference) pairs on the 8-photo set.

    .venv/bin/python benchmarks/bench_eval_render.py              # 1,000 examples, 3 runs
    .venv/bin/python benchmarks/bench_eval_render.py --n 300 --runs 1

References: the offline teacher (temperature 0) on simulated look requests (``streams.simulator``);
predictions: the same teacher at temperature 0.7 (seeded noise), so they differ from the references
the way a student's do and most predictions are distinct edits. Prints, side by side in one run,
the median of ``--runs`` for the paper's parameter metrics alone and for the rendered-look
agreement (one 17³ LUT per distinct edit, every photo, ΔE + direction decisions), each run with a
cold render cache; wall and CPU time, since the machine is shared. Target: rendered agreement
for 1,000 examples under 60 s on the 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from editor import render
    from editor.lookcompare import LookRenders
    from editor.photoset import PHOTO_SET, photo_stack
    from schemas.validation import validate_edit
    from streams.simulator import generate_prompts, label_prompts
    from trainer.metrics import score_subsets
    from trainer.rendered import rendered_agreement

    prompts = generate_prompts(args.n, seed=0)
    ref_by = {r["prompt"]: r["edit"] for r in label_prompts(prompts, temperature=0.0)}
    pred_by = {r["prompt"]: r["edit"] for r in label_prompts(prompts, temperature=0.7, seed=1)}
    both = [p for p in prompts if p in ref_by and p in pred_by]
    refs, preds = [validate_edit(ref_by[p]) for p in both], [validate_edit(pred_by[p]) for p in both]
    args.n = len(both)
    distinct = len({e.canonical_json() for e in refs + preds})
    photos = photo_stack()
    params, rendered, cpu = [], [], []
    summary = {}
    for _ in range(args.runs):
        t = time.perf_counter()
        score_subsets(preds, refs)
        params.append(time.perf_counter() - t)
        render._cached_table.cache_clear()  # cold: every run builds its LUTs again
        t, c = time.perf_counter(), time.process_time()
        summary = rendered_agreement(preds, refs, LookRenders()).summary()
        rendered.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    p, r, c = statistics.median(params), statistics.median(rendered), statistics.median(cpu)
    print(f"\n# Evaluation time, {args.n} examples, {len(PHOTO_SET)} photos at {photos.shape[2]}x{photos.shape[1]}, "
          f"{distinct} distinct edits (median of {args.runs}; shared 2-core CPU)\n")
    print("| what | seconds | per example ms | x parameter metrics |\n|---|---|---|---|")
    print(f"| parameter metrics (paper) | {p:.3f} | {1000 * p / args.n:.2f} | 1.0 |")
    print(f"| rendered agreement (ΔE + directions) | {r:.1f} | {1000 * r / args.n:.1f} | {r / p:.0f} |")
    print(f"| rendered agreement, CPU time of this process | {c:.1f} | {1000 * c / args.n:.1f} | {c / p:.0f} |")
    print(f"\nunder 60 s wall: {'yes' if r < 60 else 'NO'} (load average {os.getloadavg()[0]:.1f}); "
          f"mean ΔE {summary['delta_e']:.2f}, "
          f"direction agreement {summary['direction_agreement']:.3f} over {summary['decisions']} decisions")


if __name__ == "__main__":
    main()
