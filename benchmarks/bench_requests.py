"""Real-request direction accuracy of the offline teacher and a student on the shared dev set.

    .venv/bin/python benchmarks/bench_requests.py                         # teacher + a quick student
    .venv/bin/python benchmarks/bench_requests.py --data-dir data         # teacher + that registry's current
    .venv/bin/python benchmarks/bench_requests.py --n 3000 --max-minutes 6

The requests are the 300 of ``../shared/benchmarks/real-requests/dev.tsv`` (``TONEFLOW_REAL_REQUESTS_DIR``;
read at run time, never copied); without them it says so and uses the small built-in set. The
quick student is the default MiniLM trained by ``toneflow train`` (``trainer.train.main``) on
``--n`` simulated requests labelled by the offline teacher, in a temp data dir; it also reports
that student's intent-disjoint test scores next to it, so both views of it are in one table.
The rule is ``trainer.requests`` (mean change over the 8-photo set reaches the threshold the asked way).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="use this registry's current model instead of training one")
    parser.add_argument("--n", type=int, default=2000, help="simulated examples for the quick student")
    parser.add_argument("--max-minutes", type=float, default=4.0, help="fit budget of the quick student")
    parser.add_argument("--failures", type=int, default=8)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from editor.lookcompare import LookRenders
    from foundation.settings import Settings
    from streams.simulator import simulate_dataset
    from trainer import registry
    from trainer.config import TrainConfig
    from trainer.requests import default_requests, result_table, run_requests, teacher_predict
    from trainer.train import main as train

    name, requests = default_requests(Settings())
    if name == "builtin":
        print("the shared dev set is not on this machine: using the built-in requests")
    outcome = None
    if args.data_dir:
        settings = Settings(data_dir=Path(args.data_dir))
    else:
        work = Path(tempfile.mkdtemp(prefix="toneflow-requests-"))
        settings = Settings(data_dir=work / "data")
        t = time.monotonic()
        outcome = train(TrainConfig(input=str(simulate_dataset(work / "sim.jsonl", args.n, seed=0)),
                                    max_minutes=args.max_minutes, progress=False), settings)
        print(f"quick student {outcome['version']}: {args.n} simulated examples, trained in "
              f"{(time.monotonic() - t) / 60:.1f} min")
    student = registry.load_student(settings)
    renders = LookRenders()
    rows = [("offline teacher", run_requests(teacher_predict(), requests, renders)),
            (f"student {student.version}", run_requests(student.predict, requests, renders))]
    print(f"\n# Real-request direction accuracy on {name} ({len(requests)} requests)\n")
    print(result_table(rows))
    if outcome is not None:
        print(f"\nthe same student on its intent-disjoint test split: overall {outcome['overall']:.3f} "
              f"(seen looks {outcome.get('seen_looks_overall', float('nan')):.3f}, "
              f"unseen looks {outcome.get('unseen_looks_overall', float('nan')):.3f}), "
              f"ΔE vs teacher {outcome.get('delta_e', float('nan')):.2f}, "
              f"direction agreement {outcome.get('direction_agreement', float('nan')):.3f}")
    for who, r in rows:
        print(f"\n{who}: {len(r.failures)} not met, e.g.")
        for f in r.failures[:args.failures]:
            print(f"  [{f['statistic']} {f['asked']}, moved {f['moved']:+.4f}] {f['prompt'][:70]}")


if __name__ == "__main__":
    main()
