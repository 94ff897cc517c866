"""Landing records in the warehouse: every toneflow topic → its Parquet table.

Each stage lands the records it consumes, from the events it already decoded (decode once per
record): the labeler lands prompts, the join lands labels and exports, and the sink stage here
lands accepted examples and DLQ records, which nothing else consumes. Per batch, in this order
(docs/reliability.md §3):
  1. ``batch_columns``: each decoded record becomes a row carrying its topic/partition/offset;
  2. ``land``: one Parquet file per table and date (whatever partitions the batch spans) named
     after the batch's offset ranges, written atomically (warehouse.writer) off the event loop; a
     write that fails (disk full) is retried while the batch is held;
  3. the batch's offsets are committed (``streams/batch_stage.py``).
A crash before 3 replays the batch: the same offsets give the same file names (replaced, not
duplicated); a batch cut differently leaves duplicate rows across files, which the warehouse views
remove by key. Guarantee: at-least-once into files, exactly-once in the views.

Records that do not decode get no row: the stage that consumes the topic dead-letters them (the
labeler for prompts, the join for labels/exports), so each bad record has one DLQ entry. Only a
foreign producer can put a bad record on the accepted or DLQ topic (the worker writes both); the
sink stage accounts for those too: a bad accepted record is dead-lettered like any other, and a bad
DLQ record is stored in the dlq table as its own dead letter (sending it to the DLQ topic again
could loop), so every record of every topic is a row or a dead letter (docs/reliability.md §10).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from foundation.failpoints import failpoint
from schemas.events import (
    TOPIC_ACCEPTED,
    TOPIC_DLQ,
    TOPIC_EXPORTS,
    TOPIC_LABELS,
    TOPIC_PROMPTS,
    AcceptedExample,
    DlqRecord,
    ExportEvent,
    LabelEvent,
    PromptEvent,
)
from streams.batch_stage import Stage, timed
from streams.codec import Produced, Raw, decode
from streams.outputs import Output
from streams.pipeline import Pipeline
from warehouse import tables
from warehouse.writer import column_files, sync_dirs, write_tables

log = logging.getLogger(__name__)

SINK_BATCH = 2000
SINK_WITHIN_S = 1.0

# topic -> (warehouse table, event model, row builder)
SINKS: dict[str, tuple[str, type[BaseModel], Callable[[Any, tables.Source], dict[str, Any]]]] = {
    TOPIC_PROMPTS: ("prompts", PromptEvent, tables.prompt_row),
    TOPIC_EXPORTS: ("exports", ExportEvent, tables.export_row),
    TOPIC_LABELS: ("labels", LabelEvent, tables.label_row),
    TOPIC_ACCEPTED: ("accepted_examples", AcceptedExample, tables.accepted_row),
    TOPIC_DLQ: ("dlq", DlqRecord, tables.dlq_row),
}

# A consumed record and its event (None: it did not decode).
Decoded = tuple[Raw, BaseModel | None]


def batch_columns(topic: str, items: Sequence[Decoded]
                  ) -> tuple[dict[str, list[Any]], dict[int, tuple[int, int]]]:
    """(columns, partition -> (first offset, last offset)) of one batch of ``topic``'s records.

    One file per table and batch, whatever partitions the batch spans: each row carries its own
    partition and offset (the views de-duplicate by them), and the file's name is made from
    every partition's offset range (``warehouse.writer.column_files``), so a replay of the same
    batch replaces it. One file per partition cost ~0.7 ms of the landing thread's CPU per file
    (a writer, a footer, an fsync), four times per table and batch on four partitions
    (benchmarks/bench_pipeline.py, docs/benchmarks.md). The offset ranges cover every record of
    the batch, decoded or not, so the name is the same when the batch is replayed. Columns
    (``warehouse.tables.to_columns``), not a dict per row: building rows was most of the cost of
    landing a batch. Replays, crash points and the views' answers: tests/test_streams_pipeline.py
    and the SIGKILLs of scripts/acceptance_streams.py.
    """
    table = SINKS[topic][0]
    spans: dict[int, tuple[int, int]] = {}
    events, partitions, offsets = [], [], []
    for raw, record in items:
        span = spans.get(raw.partition)
        spans[raw.partition] = ((raw.offset, raw.offset) if span is None
                                else (min(span[0], raw.offset), max(span[1], raw.offset)))
        if record is not None:
            events.append(record)
            partitions.append(raw.partition)
            offsets.append(raw.offset)
    # ingested_at: one time per file, taken in the order the files are written (as rows built one
    # by one had): the retrain trigger's watermark is the newest ingested_at it counted, so a file
    # landing after a count must not carry a time at or before one already counted.
    return tables.to_columns(table, events, topic, partitions, offsets, datetime.now(UTC)), spans


def sort_out(topic: str, raws: Sequence[Raw], produced: Produced | None = None
             ) -> tuple[list[Decoded], list[Output]]:
    """(records with their events, dead letters to send) of a batch the sink stage consumed.

    A record of the DLQ topic that does not decode gets its dead letter as its event: it is stored
    in the dlq table where it is, not sent to the DLQ topic again. ``produced``: the accepted
    examples this worker's join encoded, taken back by their exact bytes instead of validated again
    (``streams.codec.Produced``); a record anyone else wrote is validated in full.
    """
    model = SINKS[topic][1]
    items: list[Decoded] = []
    dead: list[Output] = []
    stage = f"sink.{topic}"
    for raw in raws:
        record, bad = decode(raw, model, stage, produced)
        if bad is not None:
            if topic == TOPIC_DLQ:
                record = bad
            else:
                dead.append((TOPIC_DLQ, raw.key.decode(errors="replace") if raw.key else None, bad))
        items.append((raw, record))
    return items, dead


def write(pipe: Pipeline, topic: str, items: Sequence[Decoded]) -> int:
    """Write one batch's rows (blocking); returns the number of rows."""
    return _write(pipe, topic, items)[0]


def _write(pipe: Pipeline, topic: str, items: Sequence[Decoded]) -> tuple[int, float]:
    """``write``, and the CPU seconds it took on its thread."""
    cpu_started = time.thread_time()
    table = SINKS[topic][0]
    columns, spans = batch_columns(topic, items)
    written = len(columns["src_offset"])
    files: list[tuple[Any, Path]] = []
    if written:
        # Named after the lowest partition's range, with every range in the fingerprint; a batch
        # of one partition is named as it always was.
        partition = min(spans)
        first, last = spans[partition]
        files = column_files(pipe.settings, table, columns, topic=topic, partition=partition, first_offset=first,
                             last_offset=last, spans=spans if len(spans) > 1 else None)
    # One file per day (one, nearly always), all fsynced together before their renames
    # (write_tables); the renames are durable once their directories are, all fsynced together
    # too, and before the batch can be committed: this returns only after it.
    paths = write_tables(files, sync_dir=False)
    sync_dirs(p.parent for p in paths)
    return written, time.thread_time() - cpu_started


async def land(pipe: Pipeline, by_topic: dict[str, list[Decoded]]) -> None:
    """Write each topic's rows of a batch off the event loop; hold the batch while the disk refuses."""
    for topic, items in by_topic.items():
        if not items:
            continue
        table = SINKS[topic][0]
        delay = 0.5
        with timed(pipe, "sink"):
            while True:
                try:
                    written, cpu = await asyncio.to_thread(_write, pipe, topic, items)
                    pipe.add_cpu("sink", cpu)
                    break
                except OSError as err:
                    # Disk full, permissions, a vanished mount: hold the batch (no commit) and retry;
                    # the partition stalls visibly instead of losing data.
                    log.error("sink %s cannot write (%s); retrying in %.0f s", table, err, delay)
                    pipe.count(f"sink_{table}_errors")
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
        pipe.count(f"sink_{table}", written)
    failpoint("sink.after_write_before_ack")


class SinkStage(Stage):
    """Accepted examples and DLQ records → the warehouse (consumer group ``toneflow-sink``)."""

    name = "sink"
    topics = (TOPIC_ACCEPTED, TOPIC_DLQ)
    batch = SINK_BATCH
    within_s = SINK_WITHIN_S

    async def begin(self, raws: list[Raw]) -> Awaitable[None]:
        by_topic: dict[str, list[Raw]] = defaultdict(list)
        for raw in raws:
            by_topic[raw.topic].append(raw)
        items: dict[str, list[Decoded]] = {}
        dead: list[Output] = []
        with timed(self.pipe, "sink_decode", cpu=True):
            for topic, part in by_topic.items():
                items[topic], topic_dead = sort_out(topic, part, self.pipe.produced)
                dead.extend(topic_dead)
        if dead:
            self.pipe.count("sink_dead_lettered", len(dead))
            self.outbox.send_all(dead)
        return self._finish(raws, items, bool(dead))

    async def _finish(self, raws: list[Raw], items: dict[str, list[Decoded]], dead: bool) -> None:
        if dead:
            await self.outbox.flush()  # acknowledged before the batch is committed
        async with self.landing:
            await land(self.pipe, items)
        self.offsets.done(raws)
