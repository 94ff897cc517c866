"""Pipeline throughput vs the raw consume rate, measured side by side in one run.

    .venv/bin/python benchmarks/bench_pipeline.py --projects 3000 --runs 3

For each run, on a fresh embedded broker: the simulated traffic (offline-teacher-served prompts and
exports) is produced up front; then
  * raw: a plain confluent-kafka consumer reads every prompt and export record (no processing);
  * pipeline: `toneflow worker` starts, and the clock runs from its first Parquet write until every
    expected accepted example is in the warehouse (decode, label reuse, join, four sinks, commits).
Prints medians and the pipeline/raw ratio. Worker start-up (imports, encoder load) is excluded.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from foundation import broker  # noqa: E402
from foundation.kafka import consumer_config  # noqa: E402
from foundation.settings import Settings  # noqa: E402
from schemas.events import TOPIC_EXPORTS, TOPIC_PROMPTS, TOPICS  # noqa: E402
from streams.simulator import plan_traffic, send  # noqa: E402
from tests.streams_harness import count, start_worker, stop, wait_for  # noqa: E402
from warehouse.layout import data_files  # noqa: E402


def raw_consume(settings: Settings, n_events: int) -> float:
    from confluent_kafka import Consumer

    consumer = Consumer(consumer_config(settings, f"bench-raw-{uuid.uuid4().hex[:6]}"))
    consumer.subscribe([TOPIC_PROMPTS, TOPIC_EXPORTS])
    seen, started = 0, None
    try:
        while seen < n_events:
            msgs = consumer.consume(1000, 1.0)
            if msgs and started is None:
                started = time.perf_counter()
            seen += sum(1 for m in msgs if not m.error())
    finally:
        consumer.close()
    return seen / (time.perf_counter() - started)


def pipeline(settings: Settings, expected: int, n_events: int, log: Path) -> float:
    worker = start_worker(settings, log)
    try:
        wait_for(lambda: bool(data_files(settings, "prompts")), 120, "the first Parquet write", poll=0.05)
        started = time.perf_counter()
        wait_for(lambda: count(settings, "SELECT count(*) FROM accepted_examples") >= expected, 600,
                 "every accepted example", poll=0.2)
        return n_events / (time.perf_counter() - started)
    finally:
        stop(worker)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--projects", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    raws, pipes = [], []
    for run in range(args.runs):
        root = Path(tempfile.mkdtemp(prefix="toneflow-bench-"))
        own = Settings(data_dir=root / "broker")
        state = broker.start(own, TOPICS)
        try:
            settings = Settings(data_dir=root / "data", kafka_bootstrap=state.bootstrap)
            plan = plan_traffic(settings, args.projects, seed=run)
            send(settings, plan, progress=False)
            raws.append(raw_consume(settings, len(plan.wire)))
            pipes.append(pipeline(settings, len(plan.expected_accepted), len(plan.wire), root / "worker.log"))
            print(f"run {run + 1}: {len(plan.wire)} events  raw {raws[-1]:,.0f} ev/s  pipeline {pipes[-1]:,.0f} ev/s")
        finally:
            broker.stop(own)
    raw, pipe = statistics.median(raws), statistics.median(pipes)
    print()
    print(f"| path | events/s (median of {args.runs}) | vs raw |")
    print("|---|---|---|")
    print(f"| raw confluent-kafka consume (prompts+exports) | {raw:,.0f} | 1.00 |")
    print(f"| toneflow pipeline, offline teacher, to accepted Parquet | {pipe:,.0f} | {pipe / raw:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
