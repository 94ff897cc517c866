"""Send served prompt events to ``toneflow.prompts`` without ever slowing down or failing a request.

``EventEmitter.emit`` puts the event on a bounded in-process queue and returns at once. A daemon
thread drains the queue through ``streams.producer.EventProducer`` (idempotent, acks=all, key =
project_id) and flushes after each drained batch, so every event ends up counted exactly once as
``delivered``, ``failed`` (the broker did not acknowledge it within ``message.timeout.ms``) or
``dropped`` (queue full, or no broker configured). The counters are shown by ``/healthz``.

Delivery is at most once from the server's point of view: a failed event is not resent (the user
already has their edit; the lost row only shrinks the A/B sample). ``close`` flushes what is queued.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from foundation.settings import Settings
from schemas.events import PromptEvent
from streams.producer import DeliveryError

log = logging.getLogger(__name__)

QUEUE_MAX = 10_000  # ~2 MB of events: minutes of traffic at this box's rates, bounded when Kafka is down
DRAIN_MAX = 500  # events per flush
# librdkafka's default is 300 s; a served event that cannot be written in 10 s is counted as failed
# and the queue keeps moving, so /healthz shows a Kafka outage within seconds.
PRODUCER_OVERRIDES: dict[str, Any] = {"message.timeout.ms": 10_000}
FLUSH_TIMEOUT_S = 15.0


class EventEmitter:
    def __init__(self, settings: Settings, enabled: bool = True) -> None:
        self.settings = settings
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self.last_error: str | None = None
        self.enabled = enabled
        self.wanted = enabled  # the settings asked for events (``enabled`` turns False when the broker is unusable)
        self.failing_since: float | None = None  # time of the first failed delivery since the last good one
        self._queue: queue.Queue[PromptEvent] = queue.Queue(QUEUE_MAX)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._producer: Any = None
        if not enabled:
            self.last_error = "disabled (TONEFLOW_SERVE_EMIT_EVENTS=false)"
            return
        try:
            from streams.producer import EventProducer

            self._producer = EventProducer(settings, **PRODUCER_OVERRIDES)
        except Exception as err:  # noqa: BLE001 - no broker must not stop the server
            self.enabled = False
            self.last_error = f"events off: {err}"
            log.warning("serving without prompt events: %s", err)
            return
        self._thread = threading.Thread(target=self._run, name="toneflow-events", daemon=True)
        self._thread.start()

    def emit(self, event: PromptEvent) -> None:
        """Queue one event; never blocks, never raises."""
        if not self.enabled:
            self.dropped += 1
            return
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1

    def emit_lazy(self, make: Callable[[], PromptEvent]) -> None:
        """``emit(make())``, but the event is only built when it can be queued (not when events are off)."""
        if not self.enabled:
            self.dropped += 1
            return
        self.emit(make())

    def degraded(self) -> str | None:
        """Why events asked for are not reaching the broker now, or None."""
        if self.wanted and not self.enabled:
            return self.last_error or "the prompt-event producer could not be created"
        if self.failing_since is not None:
            return (f"prompt events failing for {time.time() - self.failing_since:.0f} s ({self.failed} failed "
                    f"in all): {self.last_error}")
        if self.enabled and self.queued >= QUEUE_MAX // 2:
            return f"{self.queued} prompt events queued (the broker is slower than the traffic; full at {QUEUE_MAX})"
        return None

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def _drain(self, first: PromptEvent) -> None:
        batch = [first]
        while len(batch) < DRAIN_MAX:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        for event in batch:
            self._producer.send_prompt(event)
        try:
            self._producer.flush(FLUSH_TIMEOUT_S)
            self.delivered += len(batch)
            self.failing_since = None
        except DeliveryError as err:
            lost = len(batch) if err.still_queued else len(err.failed)
            self.failed += lost
            self.delivered += len(batch) - lost
            self.last_error = str(err)
            if self.failing_since is None:
                self.failing_since = time.time()
            log.error("prompt events not delivered: %s", err)

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            try:
                self._drain(first)
            except Exception as err:  # noqa: BLE001 - the emitter thread must outlive any one bad batch
                self.failed += 1
                self.last_error = f"{type(err).__name__}: {err}"
                if self.failing_since is None:
                    self.failing_since = time.time()
                log.exception("prompt event emitter")

    def close(self, timeout_s: float = 20.0) -> None:
        """Deliver what is queued (up to ``timeout_s``), then stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
        if self._producer is not None:
            # Release librdkafka's threads and sockets now, not whenever the app object is collected.
            try:
                self._producer.close(timeout=1.0)  # the thread above already flushed what it could
            except DeliveryError as err:
                self.failed += len(err.failed) + err.still_queued
            self._producer = None

    def stats(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "wanted": self.wanted, "delivered": self.delivered, "failed": self.failed,
                "dropped": self.dropped, "queued": self.queued, "last_error": self.last_error}
