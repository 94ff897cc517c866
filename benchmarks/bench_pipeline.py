"""Pipeline throughput vs a bare consumer, measured side by side in one run, and where time goes.

    .venv/bin/python benchmarks/bench_pipeline.py --projects 31000 --runs 3

The simulated traffic (offline-teacher-served prompts, exports, duplicates; ~1.6 events per
project, so 31,000 projects are ~50,000 events) is planned once. Then, per run, on a fresh
embedded broker:
  * bare: ``--raw-records`` records (the plan's own values, repeated) are produced to a topic
    with the worker's partition count, and a plain confluent-kafka consumer reads them all
    (no decoding, no processing); the clock starts at its first record;
  * pipeline: the plan is produced, then `toneflow worker` starts; the clock runs from its first
    Parquet write until every expected accepted example is in the warehouse (decode, label reuse,
    join with its changelog, every record landed in its table, commits), so worker start-up is
    excluded.
Prints each run, the medians, the pipeline/bare ratio, the worker's CPU seconds over the window
(events per CPU-second is what a worker does with a core of its own; the machine may be shared,
see the load average printed), the CPU seconds of its main thread (the event loop, which runs
every stage's Python work but landing, and so bounds one worker's throughput), and a profile
summary from the worker's own per-batch timers (``Pipeline.add_time``: wall time per stage, and
the CPU time of the thread that ran it where a stage counts it; the three stages overlap in one
process): decode and state, encoding and producing, waiting for acks, landing rows in Parquet
(rows, Parquet, fsync, in a thread), and waiting for records (``consume``).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from foundation import broker  # noqa: E402
from foundation.kafka import consumer_config, create_topics, producer_config  # noqa: E402
from foundation.settings import Settings  # noqa: E402
from schemas.events import TOPICS  # noqa: E402
from streams.simulator import Plan, plan_traffic, send  # noqa: E402
from tests.streams_harness import count, start_worker, stop, wait_for  # noqa: E402
from warehouse.layout import data_files  # noqa: E402

RAW_TOPIC = "bench.raw"
# The simulator signs the teacher-served edits it plans, and the worker reuses a served edit only
# when that signature checks out (streams/guard.py). Both use this key: with the key file of each
# data dir instead, every prompt was relabelled by the teacher (one call per prompt).
SIGNING_KEY = "bench-pipeline-signing-key"
# (what, timer): ``<timer>_us`` is wall time summed per batch; ``<timer>_cpu_us``, where a stage
# counts it, the CPU time of the thread that ran the block (the event loop's, or the landing thread's).
STAGES = (("labeler: decode + label reuse (CPU)", "labeler_decode"),
          ("labeler: encode + produce labels (CPU, part of the next)", "labeler_send"),
          ("labeler: produce + wait for acks", "labeler_produce"),
          ("join: decode + state (CPU)", "join_state"),
          ("join: encode + produce outputs + changelog (CPU, part of the next)", "join_send"),
          ("join: produce + wait for acks", "join_produce"),
          ("sink stage: decode accepted + DLQ (CPU; own records taken back, not parsed)", "sink_decode"),
          ("every stage: rows + Parquet + fsync (landing thread)", "sink"),
          ("every stage: waiting for records (consume)", "consume"))


def bare_consume(settings: Settings, plan: Plan, n: int) -> float:
    from confluent_kafka import Consumer, Producer

    create_topics(settings, [RAW_TOPIC])
    producer = Producer(producer_config(settings))
    values = [(key, value) for _, key, value, _ in plan.wire]
    for i in range(n):
        key, value = values[i % len(values)]
        while True:
            try:
                producer.produce(RAW_TOPIC, key=key.encode() if key else None, value=value)
                break
            except BufferError:
                producer.poll(0.1)
    producer.flush(60)
    consumer = Consumer(consumer_config(settings, f"bench-raw-{uuid.uuid4().hex[:6]}"))
    consumer.subscribe([RAW_TOPIC])
    seen, started = 0, None
    try:
        while seen < n:
            msgs = consumer.consume(10_000, 1.0)
            if msgs and started is None:
                started = time.perf_counter()
            seen += sum(1 for m in msgs if not m.error())
    finally:
        consumer.close()
    assert started is not None
    return seen / (time.perf_counter() - started)


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """CPU seconds (user + system) of process ``pid``, or of its thread ``thread`` only."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name of process ``pid`` (librdkafka names its threads ``rdk:*``;
    Python threads share the process name), the main thread under ``main``."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = "main" if int(task.name) == pid else (task / "comm").read_text().strip()
            name = re.sub(r"\d+$", "", re.sub(r"#.*", "", name))  # rdk:broker1001 -> rdk:broker
            out[name] = out.get(name, 0.0) + cpu_seconds(pid, int(task.name))
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended between the listing and the read
    return out


def last_stats(log: Path) -> dict[str, int]:
    lines = [line for line in log.read_text(errors="replace").splitlines() if " progress " in line]
    if not lines:
        return {}
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1].split(" progress ", 1)[1])}


def pipeline(settings: Settings, plan: Plan, log: Path, broker_pid: int) -> dict[str, Any]:
    expected = len(plan.expected_accepted)
    send(settings, plan, progress=False)
    worker = start_worker(settings, log)
    try:
        wait_for(lambda: bool(data_files(settings, "prompts")), 180, "the first Parquet write", poll=0.05)
        # The main thread (its id is the process id) runs the event loop: every stage's Python work
        # but landing, which runs in threads; it is what one worker's throughput is bound by.
        started, cpu0, main0 = time.perf_counter(), cpu_seconds(worker.pid), cpu_seconds(worker.pid, worker.pid)
        # The broker runs on the same cores: its CPU per event is part of what one worker costs.
        broker0, threads0 = cpu_seconds(broker_pid), thread_cpu(worker.pid)
        wait_for(lambda: count(settings, "SELECT count(*) FROM accepted_examples") >= expected, 1200,
                 "every accepted example", poll=0.5)
        wall, cpu = time.perf_counter() - started, cpu_seconds(worker.pid) - cpu0
        main = cpu_seconds(worker.pid, worker.pid) - main0
        broker_cpu = cpu_seconds(broker_pid) - broker0
        threads = {k: v - threads0.get(k, 0.0) for k, v in thread_cpu(worker.pid).items()}
        time.sleep(5.5)  # one more progress line (every 5 s) with the final counters
        stats = last_stats(log)
        if stats.get("teacher_calls", 0) > len(plan.wire) // 10:
            print(f"warning: {stats['teacher_calls']} teacher calls: served edits were not reused "
                  "(signing key mismatch?)", file=sys.stderr)
        return {"rate": len(plan.wire) / wall, "wall": wall, "cpu": cpu, "main_cpu": main, "broker_cpu": broker_cpu,
                "threads": threads, **stats}
    finally:
        stop(worker)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--projects", type=int, default=31_000, help="simulated projects (~1.6 events each)")
    ap.add_argument("--raw-records", type=int, default=300_000, help="records the bare consumer reads")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    planned = time.perf_counter()
    os.environ["TONEFLOW_SERVE_SIGNING_KEY"] = SIGNING_KEY  # the workers inherit it
    plan = plan_traffic(Settings(data_dir=Path(tempfile.mkdtemp(prefix="toneflow-bench-plan-")),
                                 serve_signing_key=SIGNING_KEY), args.projects, seed=0)
    print(f"plan: {len(plan.wire)} events, {len(plan.expected_accepted)} expected accepted "
          f"(planned in {time.perf_counter() - planned:.0f} s)", flush=True)
    bares, pipes = [], []
    for run in range(args.runs):
        root = Path(tempfile.mkdtemp(prefix="toneflow-bench-"))
        own = Settings(data_dir=root / "broker")
        state = broker.start(own, TOPICS)
        try:
            settings = Settings(data_dir=root / "data", kafka_bootstrap=state.bootstrap)
            bares.append(bare_consume(settings, plan, args.raw_records))
            pipes.append(pipeline(settings, plan, root / "worker.log", state.pid))
            p = pipes[-1]
            print(f"run {run + 1}: bare {bares[-1]:,.0f} rec/s ({args.raw_records:,} records); pipeline "
                  f"{p['rate']:,.0f} ev/s ({len(plan.wire):,} events in {p['wall']:.1f} s, worker CPU "
                  f"{p['cpu']:.1f} s = {len(plan.wire) / max(p['cpu'], 1e-9):,.0f} ev/CPU-s, main thread "
                  f"{p['main_cpu']:.1f} s = {p['main_cpu'] * 1e6 / len(plan.wire):.0f} µs/event; load "
                  f"{os.getloadavg()[0]:.1f})", flush=True)
        finally:
            broker.stop(own)
    bare, pipe = statistics.median(bares), statistics.median(p["rate"] for p in pipes)
    per_cpu = statistics.median(len(plan.wire) / p["cpu"] for p in pipes)
    per_main = statistics.median(len(plan.wire) / p["main_cpu"] for p in pipes)
    n = len(plan.wire)
    print(f"\nload average: {' '.join(f'{x:.1f}' for x in os.getloadavg())} (2 cores, shared with other work)\n")
    print(f"| path | events/s (median of {args.runs}) | vs bare |")
    print("|---|---|---|")
    print(f"| bare confluent-kafka consumer, {args.raw_records:,} records | {bare:,.0f} | 1.00 |")
    print(f"| toneflow worker, {n:,} events to accepted Parquet (wall) | {pipe:,.0f} | {pipe / bare:.4f} |")
    print(f"| toneflow worker, per worker CPU-second | {per_cpu:,.0f} | {per_cpu / bare:.4f} |")
    print(f"| toneflow worker, per CPU-second of its main thread (the event loop) | {per_main:,.0f} | "
          f"{per_main / bare:.4f} |")
    mid = sorted(pipes, key=lambda p: p["rate"])[len(pipes) // 2]
    print(f"\nwhere the median run's worker time went ({mid['wall']:.1f} s wall, {mid['cpu']:.1f} s CPU; timers "
          "are summed per batch over the three stages, which overlap in one process; wall includes waiting, "
          "for the GIL too; CPU is the running thread's own):\n")
    print("| stage | wall s | wall µs per event | CPU µs per event |")
    print("|---|---|---|---|")
    for name, key in STAGES:
        wall_us, cpu_us = mid.get(f"{key}_us", 0), mid.get(f"{key}_cpu_us")
        print(f"| {name} | {wall_us / 1e6:.1f} | {wall_us / n:.0f} | {'' if cpu_us is None else f'{cpu_us / n:.0f}'} |")
    print(f"| worker main thread (event loop: every stage but landing) | | | {mid['main_cpu'] * 1e6 / n:.0f} |")
    print(f"| worker, every other thread (landing, librdkafka, consumers) | | | "
          f"{(mid['cpu'] - mid['main_cpu']) * 1e6 / n:.0f} |")
    print(f"| worker CPU, all of it | {mid['cpu']:.1f} | | {mid['cpu'] * 1e6 / n:.0f} |")
    print(f"| broker process (same cores; not part of the worker's CPU) | {mid['broker_cpu']:.1f} | | "
          f"{mid['broker_cpu'] * 1e6 / n:.0f} |")
    print(f"| not on the CPU (waiting for records, acks, the disk; other processes) | "
          f"{max(0.0, mid['wall'] - mid['cpu']):.1f} | {max(0.0, mid['wall'] - mid['cpu']) * 1e6 / n:.0f} | |")
    print("\nthe median run's worker CPU by thread name over the window (µs per event; Python's "
          "threads other than the main one are `python`/`toneflow`, librdkafka's `rdk:*`):\n")
    for name, sec in sorted(mid["threads"].items(), key=lambda kv: -kv[1]):
        if sec > 0:
            print(f"    {name:<16} {sec * 1e6 / n:6.0f}")
    # Stage.run counts batches: the per-batch costs (a flush, a commit, a file per partition and table) are
    # spread over this many records.
    per_batch = ", ".join(f"{stage} {mid[f'{stage}_in'] / mid[f'{stage}_batches']:,.0f}" for stage in ("labeler", "join", "sink")
                          if mid.get(f"{stage}_batches"))
    if per_batch:
        print(f"\nrecords per batch (median run): {per_batch}")
    # streams.codec.Produced: labels (join) and accepted examples (sink stage) the worker produced
    # itself and took back by their exact bytes; the rest of its consumed records were validated.
    print(f"\nown records taken back without decoding: {mid.get('own_records_reused', 0):,} "
          f"(decoded in full: {mid.get('own_records_decoded', 0):,}; prompts and exports always are)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
