"""``toneflow demo``: the main job on a fresh machine, end to end with what exists today.

Starts the embedded broker (unless TONEFLOW_KAFKA_BOOTSTRAP is set), sends sample app events,
reads them back through the contracts, and always stops what it started (Ctrl-C included).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone

from schemas.events import TOPIC_EXPORTS, TOPIC_PROMPTS, ExportEvent, PromptEvent, to_json_bytes
from schemas.validation import validate_event
from toneflow import broker
from toneflow.errors import BrokerError
from toneflow.kafka import consumer_config, producer_config
from toneflow.settings import Settings

SAMPLE_PROMPTS = ("golden hour", "Morocco", "make it moodier", "black and white", "more teal")


def run(settings: Settings) -> int:
    started_here = False
    if not settings.kafka_bootstrap:
        already = broker.read_state(settings)
        started_here = already is None or not already.alive()
        state = broker.start(settings)
        print(f"[1/3] embedded broker at {state.bootstrap}")
    else:
        print(f"[1/3] using Kafka at {settings.kafka_bootstrap}")
    try:
        return _round_trip(settings)
    finally:
        if started_here:
            broker.stop(settings)
            print("embedded broker stopped")


def _round_trip(settings: Settings) -> int:
    from confluent_kafka import Consumer, Producer

    run_id = uuid.uuid4().hex[:8]
    now = datetime.now(timezone.utc)
    events: list[tuple[str, PromptEvent | ExportEvent]] = []
    for i, prompt in enumerate(SAMPLE_PROMPTS):
        project = f"demo-{run_id}-{i}"
        events.append((TOPIC_PROMPTS, PromptEvent(event_id=f"p-{project}", project_id=project, user_id=f"u{i}",
                                                  ts=now, prompt=prompt)))
        if i % 2 == 0:
            events.append((TOPIC_EXPORTS, ExportEvent(event_id=f"x-{project}", project_id=project,
                                                      user_id=f"u{i}", ts=now)))
    producer = Producer(producer_config(settings))
    failures: list[str] = []
    for topic, event in events:
        producer.produce(topic, key=event.project_id.encode(), value=to_json_bytes(event),
                         on_delivery=lambda err, _msg: err and failures.append(str(err)))
    if producer.flush(15) or failures:
        msg = f"could not deliver demo events: {failures or 'flush timed out'}"
        raise BrokerError(msg)
    print(f"[2/3] produced {len(events)} app events ({len(SAMPLE_PROMPTS)} prompts)")

    consumer = Consumer(consumer_config(settings, f"toneflow-demo-{run_id}"))
    consumer.subscribe([TOPIC_PROMPTS, TOPIC_EXPORTS])
    wanted = {e.event_id for _, e in events}
    seen: dict[str, str] = {}
    deadline = time.monotonic() + 30
    try:
        while wanted - set(seen) and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            event = validate_event(msg.topic(), msg.value())
            if event.event_id in wanted:
                seen[event.event_id] = f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"
    finally:
        consumer.close()
    print(f"[3/3] consumed and validated {len(seen)}/{len(wanted)} events")
    for event_id, where in sorted(seen.items()):
        print(f"      {event_id:<28} {where}")
    print(json.dumps({"produced": len(events), "consumed": len(seen)}))
    return 0 if len(seen) == len(wanted) else 1
