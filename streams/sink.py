"""Sink agents: every toneflow topic → Parquet tables in the warehouse.

Sinks have two steps, in this order (docs/reliability.md §3):
  1. ``add``: decode a batch (at most ``SINK_BATCH`` records or ``SINK_WITHIN_S`` seconds) and turn
     each record into a row carrying its topic/partition/offset;
  2. ``flush``: write one Parquet file per (partition, date) named after the batch's offset range,
     atomically (warehouse.writer), off the event loop;
  3. ack the batch — its offsets are committed on the next commit interval.
A crash before 3 replays the batch: the same offsets give the same file names (replaced, not
duplicated); a batch cut differently leaves duplicate rows across files, which the warehouse views
remove by key. Guarantee: at-least-once into files, exactly-once in the views.

Records that do not decode are skipped here: the topic's primary consumer (labeler for prompts,
join for labels/exports) dead-letters them, so each bad record has one DLQ entry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable
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
from streams.codec import Raw, decode, raw_of
from streams.pipeline import Pipeline
from warehouse import tables
from warehouse.writer import write_batch

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


def rows_by_partition(topic: str, raws: list[Raw]) -> dict[int, tuple[list[dict[str, Any]], int, int]]:
    """partition -> (rows, first offset, last offset) of one batch."""
    _table, model, to_row = SINKS[topic]
    grouped: dict[int, list[Raw]] = defaultdict(list)
    for raw in raws:
        grouped[raw.partition].append(raw)
    out = {}
    for partition, items in grouped.items():
        rows = []
        for raw in items:
            record, bad = decode(raw, model, f"sink.{topic}")
            if bad is None:
                rows.append(to_row(record, tables.Source(raw.topic, raw.partition, raw.offset)))
        out[partition] = (rows, min(r.offset for r in items), max(r.offset for r in items))
    return out


def flush(pipe: Pipeline, topic: str, raws: list[Raw]) -> int:
    table = SINKS[topic][0]
    written = 0
    for partition, (rows, first, last) in rows_by_partition(topic, raws).items():
        if rows:
            write_batch(pipe.settings, table, rows, topic=topic, partition=partition, first_offset=first,
                        last_offset=last)
            written += len(rows)
    return written


def register(pipe: Pipeline) -> None:
    for topic in SINKS:
        _register_one(pipe, topic)


def _register_one(pipe: Pipeline, topic: str) -> None:
    table = SINKS[topic][0]

    @pipe.app.agent(pipe.topics[topic], name=f"sink_{table}", concurrency=1)
    async def sink(stream: Any) -> None:
        async for events in stream.noack_take(SINK_BATCH, within=SINK_WITHIN_S):
            raws = [raw_of(e) for e in events]
            delay = 0.5
            started = time.perf_counter()
            while True:
                try:
                    written = await asyncio.to_thread(flush, pipe, topic, raws)
                    break
                except OSError as err:
                    # Disk full, permissions, a vanished mount: hold the batch (no ack, no commit)
                    # and retry; the partition stalls visibly instead of losing data.
                    log.error("sink %s cannot write (%s); retrying in %.0f s", table, err, delay)
                    pipe.count(f"sink_{table}_errors")
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
            pipe.add_time("sink", started)
            failpoint("sink.after_write_before_ack")
            for event in events:
                await stream.ack(event)
            pipe.count(f"sink_{table}", written)
