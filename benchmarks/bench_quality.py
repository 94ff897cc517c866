"""One table of truth: the offline teacher and a student side by side, on everything, in one run.

    .venv/bin/python benchmarks/bench_quality.py                                # 2,000 mixed requests, 4 min fit
    .venv/bin/python benchmarks/bench_quality.py --n 2000 --max-minutes 3 --contrastive both
    .venv/bin/python benchmarks/bench_quality.py --data-dir data                # that registry's current model

Data: ``--n`` requests of the simulator's mixed traffic (``streams.simulator.simulate_dataset`` with
``Mix.default()``: looks, grammar requests and real pool requests), labelled by the offline teacher
(temperature 0); a fresh MiniLM student is trained on it by ``toneflow train`` (``trainer.train.main``)
in a temp data dir, with ``--contrastive off|on|both`` (``trainer.contrastive``; ``both`` trains
two students on the same snapshot data and prints them next to each other).

Rows, each for the teacher and every student (``trainer.evaluate.evaluate_student``):

* **seen wording / unseen intents**: overall on the intent-disjoint test split's two look subsets
  (``trainer.grouping.look_subsets``) and on all of it; with two students, test rows whose intent
  group either trained on are left out of both, so both are scored on the same rows. The references are the teacher's own labels,
  so the teacher's row is its agreement with itself (1.0 by construction; printed so the table has
  no hole, not as a result);
* **rendered ΔE**: mean CIEDE2000 between prediction and reference renders (``trainer.rendered``);
* **real requests**: direction accuracy on the shared dev set (``settings.real_requests_dir``, read
  at run time) overall and per statistic (``trainer.requests``); built-in requests without it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class _TeacherModel:
    """The offline teacher behind the students' ``predict`` interface."""

    def __init__(self) -> None:
        from trainer.requests import teacher_predict

        self.predict = teacher_predict()


def _cells(result: Any) -> dict[str, str]:
    rendered = result.rendered_summary()
    out: dict[str, str] = {}
    for key, label in (("seen_looks", "seen wording overall"), ("unseen_looks", "unseen intents overall"),
                       ("All", "intent-disjoint test overall")):
        s = result.subsets.get(key)
        out[label] = f"{s.overall:.3f} (n={s.n})" if s is not None else "-"
    for key, label in (("All", "rendered ΔE, all"), ("seen_looks", "rendered ΔE, seen wording"),
                       ("unseen_looks", "rendered ΔE, unseen intents")):
        r = rendered.get(key)
        out[label] = f"{r['delta_e']:.2f}" if r else "-"
    q = result.requests
    out["real requests, direction accuracy"] = f"{q.met}/{q.n} = {q.accuracy:.3f}"
    for stat, v in q.per_statistic.items():
        out[f"real requests, {stat}"] = f"{v['met']:.0f}/{v['n']:.0f} = {v['accuracy']:.3f}"
    return out


def table(columns: Sequence[tuple[str, dict[str, str]]]) -> str:
    """Markdown: one row per measure, one column per model."""
    measures: list[str] = []
    for _, cells in columns:
        measures += [m for m in cells if m not in measures]
    lines = ["| measure | " + " | ".join(name for name, _ in columns) + " |",
             "|---|" + "---|" * len(columns)]
    lines += [f"| {m} | " + " | ".join(cells.get(m, "-") for _, cells in columns) + " |" for m in measures]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="simulated mixed requests")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-minutes", type=float, default=4.0, help="fit budget of each student")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = auto)")
    parser.add_argument("--contrastive", choices=("off", "on", "both"), default="on",
                        help="train the student with contrastive augmentation, without, or both")
    parser.add_argument("--data-dir", help="evaluate this registry's current model instead of training")
    parser.add_argument("--workdir", help="keep the data here (default: a temp dir)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from foundation.settings import Settings
    from streams.simulator import Mix, simulate_dataset
    from trainer import registry, snapshot
    from trainer.config import TrainConfig
    from trainer.evaluate import evaluate_student
    from trainer.requests import default_requests
    from trainer.train import main as train

    name, requests = default_requests(Settings())
    runs: list[tuple[str, Settings, str]] = []  # (label, settings, snapshot id)
    if args.data_dir:
        settings = Settings(data_dir=Path(args.data_dir))
        current = registry.read_current(settings)
        if current is None:
            msg = f"no current model under {args.data_dir}: train one first (`toneflow train`)"
            raise SystemExit(msg)
        runs.append((f"student {current['version']}", settings,
                     registry.manifest(settings, current["version"])["snapshot"]))
    else:
        work = Path(args.workdir or tempfile.mkdtemp(prefix="toneflow-quality-"))
        data = work / f"mixed-{args.n}-{args.seed}.jsonl"
        if not data.exists():
            t = time.monotonic()
            simulate_dataset(data, args.n, seed=args.seed, mix=Mix.default())
            print(f"simulated + labelled {args.n} mixed requests in {time.monotonic() - t:.0f} s")
        modes = {"off": [False], "on": [True], "both": [False, True]}[args.contrastive]
        for contrastive in modes:
            settings = Settings(data_dir=work / ("data-contrastive" if contrastive else "data-plain"))
            t = time.monotonic()
            outcome = train(TrainConfig(input=str(data), max_minutes=args.max_minutes, threads=args.threads,
                                        seed=args.seed, contrastive=contrastive, progress=False), settings)
            label = f"student{' + contrastive' if contrastive else ''}"
            print(f"{label} {outcome['version']}: {outcome['train_rows']} train rows, trained in "
                  f"{(time.monotonic() - t) / 60:.1f} min (fit {outcome['fit_seconds'] / 60:.1f} min)")
            runs.append((label, settings, outcome["snapshot"]))

    # One test set for every column: test rows whose intent group any of the students trained on
    # (augmented rows included) are left out of all of them, so the columns compare like with like.
    snaps = [(label, settings, snapshot.load(settings, snap_id)) for label, settings, snap_id in runs]
    test_id, test_rows = snapshot.benchmark_set(snaps[0][1], snaps[0][2])
    union: dict[str, Any] = {}
    for _, _, snap in snaps:
        union.update((r.id, r) for r in snap.rows("train"))
    train_rows = list(union.values())
    result = evaluate_student(_TeacherModel(), test_rows, train_rows=train_rows, requests=requests)
    columns: list[tuple[str, dict[str, str]]] = [("offline teacher", _cells(result))]
    for label, settings, _ in snaps:
        result = evaluate_student(registry.load_student(settings), test_rows, train_rows=train_rows,
                                  requests=requests)
        columns.append((label, _cells(result)))
    print(f"\n# Teacher and student side by side (test set {test_id}; real requests {name}, {len(requests)})\n")
    print(table(columns))


if __name__ == "__main__":
    main()
