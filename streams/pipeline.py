"""What every stage of the worker shares (``Pipeline``); ``streams/app.py`` wires the stages in.

Reliability decisions (docs/reliability.md §2), each closing a way a stream worker loses data:

1. Every topic is consumed as raw bytes and decoded once per record by ``streams.codec``: a record
   that does not decode goes to the DLQ with its offset instead of being skipped.
2. Nothing is committed implicitly (``enable.auto.commit=false``). A stage commits a record's
   offset only after its outputs are durable: produced and acknowledged by the broker, or written
   to Parquet (``streams/batch_stage.py``). An exception anywhere therefore cannot commit the
   record that caused it.
3. Data errors never raise (they become DLQ records). Infrastructure errors (broker, disk, teacher
   down) are retried in place; what still raises ends the *whole worker* (``streams/worker.py``),
   so a stage can never die while the worker looks healthy — the process supervisor restarts it
   and it resumes from the last committed offsets.
4. Each stage handles one batch at a time; throughput comes from batching (one broker wait and one
   commit per batch) and bounded concurrency *inside* the labeler (teacher calls).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from foundation.settings import Settings
from schemas.events import TOPIC_ACCEPTED, TOPIC_LABELS
from streams.codec import Produced
from streams.topics import APP_ID, JOIN_TABLE, changelog_topic

__all__ = ["APP_ID", "JOIN_TABLE", "Pipeline", "changelog_topic"]


@dataclass
class Pipeline:
    """Everything the stages share: settings, the teacher, the producer, the progress counters."""

    settings: Settings
    teacher: Any = None
    outbox: Any = None  # streams.batch_stage.Outbox, set by streams/app.py
    stats: dict[str, int] = field(default_factory=dict)
    # What the worker produced to the topics it consumes itself, for its own stages to take back
    # without decoding again (``streams.codec.Produced``): labels (the join) and accepted examples
    # (the sink stage). Prompts and exports come from apps and are always decoded in full.
    produced: Produced = field(default_factory=lambda: Produced(frozenset({TOPIC_LABELS, TOPIC_ACCEPTED})))
    # Told each stage's whole new assignment (group id, (topic, partition) pairs) after a rebalance:
    # the liveness watchdog judges only the partitions this worker owns (streams/liveness.py).
    on_assigned: Callable[[str, Iterable[tuple[str, int]]], None] | None = None

    def count(self, name: str, n: int = 1) -> None:
        self.stats[name] = self.stats.get(name, 0) + n

    def add_time(self, stage: str, started: float, cpu_started: float | None = None) -> None:
        """Add the time since ``started`` (a ``time.perf_counter()``) to ``<stage>_us``, and the
        calling thread's CPU time since ``cpu_started`` (a ``time.thread_time()``) to ``<stage>_cpu_us``.

        Counted per batch, not per record, so it costs nothing measurable; the progress line and
        ``benchmarks/bench_pipeline.py`` read it to say where a worker's time goes. CPU time only
        for blocks that do not await: across an await it would count the other stages' work.
        """
        self.count(f"{stage}_us", round((time.perf_counter() - started) * 1e6))
        if cpu_started is not None:
            self.add_cpu(stage, time.thread_time() - cpu_started)

    def add_cpu(self, stage: str, seconds: float) -> None:
        """Add CPU seconds (measured by the caller, e.g. in a thread) to ``<stage>_cpu_us``."""
        self.count(f"{stage}_cpu_us", round(seconds * 1e6))
