"""Producing agent outputs durably: send, then wait for the broker's acknowledgement.

An agent acks its input only after ``deliver`` returns, so a crash in between replays the input
(at-least-once) instead of losing the output.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from schemas.events import TOPIC_DLQ, to_json_bytes
from streams.pipeline import Pipeline


async def send_all(pipe: Pipeline, records: Iterable[tuple[str, str | None, BaseModel]]) -> list[Any]:
    """Send (topic, key, record) triples; returns their delivery futures (not yet awaited)."""
    pending = []
    for topic, key, record in records:
        fut = await pipe.topics[topic].send(key=key.encode() if key else None, value=to_json_bytes(record))
        pending.append(fut)
        if topic == TOPIC_DLQ:
            pipe.count("dlq")
    return pending


async def deliver(pipe: Pipeline, records: Iterable[tuple[str, str | None, BaseModel]]) -> int:
    """Send (topic, key, record) triples and wait until every one is acknowledged."""
    pending = await send_all(pipe, records)
    if pending:
        await asyncio.gather(*pending)
    return len(pending)
