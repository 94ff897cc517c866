"""Producing agent outputs durably: send, then wait for the broker's acknowledgement.

An agent acks its input only after ``deliver`` returns, so a crash in between replays the input
(at-least-once) instead of losing the output. A batch sends every output first and waits once, so
a batch costs one broker round trip, not one per record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from schemas.events import TOPIC_DLQ, to_json_bytes
from streams.pipeline import Pipeline

# (topic, key, record): what an agent emits.
Output = tuple[str, str | None, BaseModel]


async def send_all(pipe: Pipeline, records: Iterable[Output]) -> list[Any]:
    """Send (topic, key, record) triples; returns their delivery futures (not yet awaited)."""
    pending = []
    dlq = 0
    for topic, key, record in records:
        fut = await pipe.topics[topic].send(key=key.encode() if key else None, value=to_json_bytes(record))
        pending.append(fut)
        dlq += topic == TOPIC_DLQ
    if dlq:
        pipe.count("dlq", dlq)
    return pending


async def deliver(pipe: Pipeline, records: Iterable[Output]) -> int:
    """Send (topic, key, record) triples and wait until every one is acknowledged."""
    pending = await send_all(pipe, records)
    if pending:
        await asyncio.gather(*pending)
    return len(pending)
