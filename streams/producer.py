"""The producer SDK app teams use to send prompt and export events.

Guarantees: idempotent producer with ``acks=all`` (broker-side dedup of retries), key =
``project_id`` (so one project's events stay in order on one partition), every event validated
against its contract before it is sent, and every delivery failure surfaced: ``flush()``/``close()``
raise ``DeliveryError`` listing the event_ids that did not make it, so a caller can resend them
(with the same event_id, which the pipeline de-duplicates).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from foundation.errors import ToneflowError
from foundation.kafka import producer_config
from foundation.settings import Settings, get_settings
from schemas.events import TOPIC_EXPORTS, TOPIC_PROMPTS, ExportEvent, PromptEvent, to_json_bytes


class DeliveryError(ToneflowError):
    """Some events were not acknowledged by the broker.

    ``failed`` maps event_id → reason for events the broker refused; ``still_queued`` counts events
    that were neither delivered nor refused when the flush timed out (their ids are not known yet).
    """

    def __init__(self, failed: dict[str, str], still_queued: int = 0) -> None:
        self.failed, self.still_queued = failed, still_queued
        parts = [f"{k}: {v}" for k, v in list(failed.items())[:3]]
        if still_queued:
            parts.append(f"{still_queued} still queued")
        msg = (f"{len(failed) + still_queued} events were not delivered ({', '.join(parts)}); "
               "resend them with the same event_id")
        super().__init__(msg)


class EventProducer:
    """Send app events to Kafka. Use as a context manager so pending events are flushed."""

    def __init__(self, settings: Settings | None = None, *, on_delivered: Callable[[str], None] | None = None,
                 **overrides: Any) -> None:
        from confluent_kafka import Producer

        self.settings = settings or get_settings()
        self._producer = Producer(producer_config(self.settings, **overrides))
        self._failed: dict[str, str] = {}
        self._on_delivered = on_delivered
        self.delivered = 0

    def send_prompt(self, event: PromptEvent) -> None:
        self.send(TOPIC_PROMPTS, event)

    def send_export(self, event: ExportEvent) -> None:
        self.send(TOPIC_EXPORTS, event)

    def send(self, topic: str, event: BaseModel) -> None:
        """Queue one validated event; raises BufferError-free by polling when the queue is full."""
        event_id = getattr(event, "event_id", None) or ""
        self.send_raw(topic, getattr(event, "project_id", None), to_json_bytes(event), event_id)

    def send_raw(self, topic: str, key: str | None, value: bytes, event_id: str = "") -> None:
        """Queue raw bytes (for tools and fault tests that must send off-contract records)."""
        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                self._failed[event_id] = str(err)
            else:
                self.delivered += 1
                if self._on_delivered:
                    self._on_delivered(event_id)

        while True:
            try:
                self._producer.produce(topic, key=key.encode() if key else None, value=value,
                                       on_delivery=delivered)
                break
            except BufferError:
                self._producer.poll(0.1)  # local queue full: wait for deliveries, then retry
        self._producer.poll(0)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for every queued event; raise DeliveryError if any was not acknowledged."""
        remaining = self._producer.flush(timeout)
        if self._failed or remaining:
            failed, self._failed = self._failed, {}
            raise DeliveryError(failed, still_queued=remaining)

    def close(self, timeout: float = 30.0) -> None:
        """Flush (raising DeliveryError as ``flush`` does), then release librdkafka's threads and sockets."""
        try:
            self.flush(timeout)
        finally:
            self._producer.close()

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
