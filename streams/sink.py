"""Landing records in the warehouse: every toneflow topic → its Parquet table.

Each stage lands the records it consumes, from the events it already decoded (decode once per
record): the labeler lands prompts, the join lands labels and exports, and the sink stage here
lands accepted examples and DLQ records, which nothing else consumes. Per batch, in this order
(docs/reliability.md §3):
  1. ``columns_by_partition``: each decoded record becomes a row carrying its topic/partition/offset;
  2. ``land``: one Parquet file per (partition, date) named after the batch's offset range, written
     atomically (warehouse.writer) off the event loop; a write that fails (disk full) is retried
     while the batch is held;
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


def columns_by_partition(topic: str, items: Sequence[Decoded]
                         ) -> dict[int, tuple[dict[str, list[Any]], int, int]]:
    """partition -> (columns, first offset, last offset) of one batch of ``topic``'s records.

    The offset range covers every record of the batch in that partition, decoded or not, so the
    file name is the same when the batch is replayed. Columns (``warehouse.tables.to_columns``),
    not a dict per row: building rows was most of the cost of landing a batch.
    """
    table = SINKS[topic][0]
    grouped: dict[int, list[Decoded]] = defaultdict(list)
    for item in items:
        grouped[item[0].partition].append(item)
    out = {}
    for partition, part in grouped.items():
        events = [record for _, record in part if record is not None]
        offsets = [raw.offset for raw, record in part if record is not None]
        # ingested_at: one time per file, taken in the order the files are written (as rows built
        # one by one had): the retrain trigger's watermark is the newest ingested_at it counted, so
        # a file landing after a count must not carry a time at or before one already counted.
        out[partition] = (tables.to_columns(table, events, topic, partition, offsets, datetime.now(UTC)),
                          min(r.offset for r, _ in part), max(r.offset for r, _ in part))
    return out


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
    written = 0
    files: list[tuple[Any, Path]] = []
    for partition, (columns, first, last) in columns_by_partition(topic, items).items():
        n = len(columns["src_offset"])
        if n:
            files += column_files(pipe.settings, table, columns, topic=topic, partition=partition,
                                  first_offset=first, last_offset=last)
            written += n
    # One file per partition (and day), all fsynced together before their renames (write_tables);
    # the renames are durable once their directories are, all fsynced together too, and before the
    # batch can be committed: this returns only after it.
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
