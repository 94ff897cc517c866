"""The retrain trigger: enough new accepted data → a ``toneflow.retrain`` record.

It counts from the warehouse, not from the stream: ``accepted_examples`` is de-duplicated by
event_id, so replays and duplicate events never inflate the count. State is a small JSON file
(``<data_dir>/streams/trigger.json``, written atomically) holding the watermark — the newest
``ingested_at`` already covered by a retrain — so it survives restarts.

Every ``TONEFLOW_TRIGGER_CHECK_S`` seconds: count accepted examples newer than the watermark with
``quality >= TONEFLOW_RETRAIN_QUALITY_FLOOR``, per look slice. When the total reaches
``TONEFLOW_RETRAIN_THRESHOLD`` and ``TONEFLOW_RETRAIN_MIN_INTERVAL_S`` has passed since the last
one, emit a RetrainEvent whose ``trigger_id`` is derived from the old watermark (a re-fire after a
crash repeats the same id, which the trainer runs once), and move the watermark. The worker starts
no process: the trainer service (``toneflow trainer``, ``trainer/service.py``) consumes the topic,
on another machine in production.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from foundation.osutil import atomic_write_json
from foundation.settings import Settings
from schemas.events import TOPIC_RETRAIN, RetrainEvent
from streams.pipeline import Pipeline

log = logging.getLogger(__name__)
EPOCH = "1970-01-01T00:00:00+00:00"


def state_path(settings: Settings) -> Path:
    return settings.data_path / "streams" / "trigger.json"


def load_state(settings: Settings) -> dict[str, Any]:
    try:
        return json.loads(state_path(settings).read_text())
    except (FileNotFoundError, ValueError):
        return {"watermark": EPOCH, "last_fired": 0.0, "fired": []}


def save_state(settings: Settings, state: dict[str, Any]) -> None:
    atomic_write_json(state_path(settings), state)


# Which accepted examples a retrain has not covered yet, with its parameters (pending_params). The
# console counts them in the same scan as its other accepted-example figures (console/loop_page.py).
PENDING_WHERE = "ingested_at > CAST(? AS TIMESTAMPTZ) AND quality >= ?"


def pending_params(settings: Settings, watermark: str) -> list[Any]:
    return [watermark, settings.retrain_quality_floor]


def pending(settings: Settings, watermark: str) -> tuple[dict[str, int], str | None]:
    """Per-slice counts of accepted examples newer than ``watermark`` above the quality floor."""
    from warehouse.catalog import connect

    rows = connect(settings).execute(
        f"SELECT look_slice, count(*), max(ingested_at) FROM accepted_examples WHERE {PENDING_WHERE} GROUP BY 1",
        pending_params(settings, watermark)).fetchall()
    per_slice = {str(s): int(n) for s, n, _ in rows}
    newest = max((m for *_, m in rows if m is not None), default=None)
    return per_slice, None if newest is None else newest.isoformat()


def check(settings: Settings, now: float | None = None) -> RetrainEvent | None:
    """Decide whether to fire; returns the event (state not yet moved) or None."""
    now = time.time() if now is None else now
    state = load_state(settings)
    # Within the minimum interval nothing can fire, whatever the count: the count is a query over
    # every accepted file of the warehouse, which grows with it, and run every few seconds it was
    # a fifth of a busy worker's CPU (benchmarks/bench_pipeline.py, which checks every second).
    if now - state["last_fired"] < settings.retrain_min_interval_s:
        return None
    per_slice, newest = pending(settings, state["watermark"])
    total = sum(per_slice.values())
    if total < settings.retrain_threshold or newest is None:
        return None
    trigger_id = hashlib.sha256(state["watermark"].encode()).hexdigest()[:16]
    return RetrainEvent(
        trigger_id=trigger_id, new_examples=total, per_slice=per_slice,
        reason=f"{total} new accepted examples >= threshold {settings.retrain_threshold}",
        snapshot_ref=f"accepted_examples:ingested_at>{state['watermark']},<={newest}",
    )


def commit(settings: Settings, event: RetrainEvent, now: float | None = None) -> None:
    """Move the watermark past what ``event`` covers."""
    state = load_state(settings)
    assert event.snapshot_ref is not None
    state["watermark"] = event.snapshot_ref.rsplit("<=", 1)[1]
    state["last_fired"] = time.time() if now is None else now
    state["fired"] = [*state["fired"][-99:], event.trigger_id]
    save_state(settings, state)


async def run(pipe: Pipeline) -> None:
    """Check every ``trigger_check_s`` seconds until cancelled (the worker runs it next to its stages)."""
    settings = pipe.settings
    while True:
        await asyncio.sleep(settings.trigger_check_s)
        event = await asyncio.to_thread(check, settings)
        if event is None:
            continue
        await pipe.outbox.deliver([(TOPIC_RETRAIN, event.trigger_id, event)])
        commit(settings, event)
        pipe.count("retrain_triggers")
        log.warning("retrain %s fired: %s", event.trigger_id, event.reason)
