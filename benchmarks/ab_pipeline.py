"""Worker trees side by side: ``bench_pipeline.py``'s pipeline measurement, runs interleaved.

    .venv/bin/python benchmarks/ab_pipeline.py --projects 20000 --runs 3 /tmp/tf-a /tmp/tf-b [/tmp/tf-c ...]

Each tree is a checkout of the code (e.g. ``git archive main | tar -x -C /tmp/tf-a``); the worker
of each run is started from its tree (working directory and ``PYTHONPATH``), everything else (the
plan, the broker, the clock) is this checkout's ``bench_pipeline.py``. The plan is made once; the
runs alternate A B, B A, ... each on a fresh embedded broker, so a change of load on a shared
machine falls on both (with more than two trees: each round in order, the next in reverse). Prints
each run (events/s, worker CPU and main-thread CPU per event, the stage timers per event) and the
medians, with the worker's CPU by thread (main, its other Python threads, librdkafka's) and the
broker's, per event.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "benchmarks"))

import bench_pipeline as bench  # noqa: E402

from foundation import broker  # noqa: E402
from foundation.settings import Settings  # noqa: E402
from schemas.events import TOPICS  # noqa: E402
from streams.simulator import plan_traffic  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trees", nargs="+", type=Path, help="two or more checkouts of the worker's code (A, B, ...)")
    ap.add_argument("--projects", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if len(args.trees) < 2:
        ap.error("give at least two trees to compare")
    os.environ["TONEFLOW_SERVE_SIGNING_KEY"] = bench.SIGNING_KEY
    plan = plan_traffic(Settings(data_dir=Path(tempfile.mkdtemp(prefix="toneflow-ab-plan-")),
                                 serve_signing_key=bench.SIGNING_KEY), args.projects, seed=0)
    n = len(plan.wire)
    trees = [t.resolve() for t in args.trees]
    results: dict[Path, list[dict[str, Any]]] = {t: [] for t in trees}
    for run in range(args.runs):
        for tree in trees if run % 2 == 0 else trees[::-1]:
            os.environ["PYTHONPATH"] = str(tree)
            os.chdir(tree)  # ``python -m`` puts the working directory first on the worker's path
            root = Path(tempfile.mkdtemp(prefix="toneflow-ab-"))
            own = Settings(data_dir=root / "broker")
            state = broker.start(own, TOPICS)
            try:
                p = bench.pipeline(Settings(data_dir=root / "data", kafka_bootstrap=state.bootstrap), plan,
                                   root / "worker.log", state.pid)
            finally:
                broker.stop(own)
                shutil.rmtree(root, ignore_errors=True)
            results[tree].append(p)
            timers = " ".join(f"{k[:-3]}={p[k] / n:.0f}" for k in sorted(p) if k.endswith("_us"))
            print(f"run {run + 1} {tree}: {p['rate']:,.0f} ev/s, worker CPU {p['cpu'] * 1e6 / n:.0f} µs/event, "
                  f"main thread {p['main_cpu'] * 1e6 / n:.0f}, broker {p['broker_cpu'] * 1e6 / n:.0f}; "
                  f"µs/event: {timers}; load {os.getloadavg()[0]:.1f}",
                  flush=True)
    print(f"\n{n:,} events; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("\n| tree | events/s, runs | median | per worker CPU-second | µs CPU per event: main thread | "
          "other Python threads | librdkafka | worker | broker | worker + broker |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for tree in trees:
        ps = results[tree]

        def med(f: Any, ps: list[dict[str, Any]] = ps) -> float:
            return statistics.median(f(p) for p in ps) * 1e6 / n

        def rdk(p: dict[str, Any]) -> float:
            return sum(v for k, v in p["threads"].items() if k.startswith("rdk:"))

        rates = " / ".join(f"{p['rate']:,.0f}" for p in ps)
        print(f"| {tree} | {rates} | "
              f"{statistics.median(p['rate'] for p in ps):,.0f} | {statistics.median(n / p['cpu'] for p in ps):,.0f} | "
              f"{med(lambda p: p['main_cpu']):.0f} | {med(lambda p: p['cpu'] - p['main_cpu'] - rdk(p)):.0f} | "
              f"{med(rdk):.0f} | {med(lambda p: p['cpu']):.0f} | {med(lambda p: p['broker_cpu']):.0f} | "
              f"{med(lambda p: p['cpu'] + p['broker_cpu']):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
