"""Decoding raw Kafka records into events, with errors as a second output.

Every toneflow topic is consumed as raw bytes and decoded here, once per record
(docs/reliability.md §2.3): a record either becomes an event or a ``DlqRecord`` that
names its topic/partition/offset, the stage and the reason. Nothing raises on bad data.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any, NamedTuple, TypeVar

from pydantic import BaseModel, ValidationError

from schemas.events import DlqRecord, SourceRef, construct, to_json_bytes
from schemas.exceptions import SchemaViolation
from schemas.validation import validate_model

MAX_RECORD_BYTES = 64 * 1024  # a prompt event is < 2 KB; anything this large is not a real event
# A DLQ record is bounded *after* JSON encoding: a value full of NUL/control bytes grows ~6x when
# escaped, and a DLQ record over MAX_RECORD_BYTES would be skipped by the DLQ sink itself.
MAX_DLQ_BYTES = MAX_RECORD_BYTES // 2
MAX_KEY_CHARS = 1024

T = TypeVar("T", bound=BaseModel)


class Raw(NamedTuple):
    """A record as it came off the log."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @property
    def source(self) -> SourceRef:
        # Not validated (schemas.events.construct): the broker's own metadata of a consumed record,
        # not app data, and within SourceRef's bounds; validating it was a few µs per record.
        return construct(SourceRef, topic=self.topic, partition=self.partition, offset=self.offset)

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


def _text(value: str) -> str:
    """``value`` as text every encoder takes (a lone surrogate from ``json.loads`` becomes ``\\udXXX``)."""
    return value.encode("utf-8", errors="backslashreplace").decode("utf-8")


def dead_letter(raw: Raw, stage: str, error_kind: str, error: str, event_id: str | None = None) -> DlqRecord:
    """The DLQ record for ``raw``: its wire form is at most MAX_DLQ_BYTES, with as much of the value as fits."""
    value = raw.value or b""
    text = value[:MAX_DLQ_BYTES].decode("utf-8", errors="backslashreplace")
    fields = {"stage": _text(stage), "error_kind": _text(error_kind), "error": _text(error[:2000]),
              "source": raw.source, "event_id": _text(event_id[:MAX_KEY_CHARS]) if event_id is not None else None,
              "key": raw.key[:MAX_KEY_CHARS].decode("utf-8", errors="backslashreplace") if raw.key else None}

    def build(n: int) -> DlqRecord:
        return DlqRecord(**fields, raw=text[:n], raw_truncated=n < len(text) or len(value) > MAX_DLQ_BYTES)

    record = build(len(text))
    if len(to_json_bytes(record)) <= MAX_DLQ_BYTES:
        return record
    lo, hi = 0, len(text)  # the longest excerpt whose encoded record fits: build(lo) fits, build(hi) does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if len(to_json_bytes(build(mid))) <= MAX_DLQ_BYTES else (lo, mid)
    return build(lo)


class Produced:
    """Records this process produced to its own internal topics, by their exact wire bytes.

    The worker consumes what it produced: the join reads the labels the labeler wrote, the sink
    stage the accepted examples the join wrote. Validating those again cost more than anything else
    a worker does per event (a label or accepted example is ~50 µs through the edit contract's
    validators, benchmarks/bench_pipeline.py). ``decode`` asks here first: a record whose value is
    byte-for-byte one this process encoded from its event (``schemas.events.to_json_bytes``) gets
    that event back instead of a second parse. Nothing is trusted because of the topic it came on:
    a record another process wrote (a foreign producer, a test, a replay after a restart, another
    worker of the group) matches no entry unless its bytes are identical to ours, and goes through
    the full contract as before. Size and emptiness are checked before the lookup either way.

    An entry is handed out once (a consumer reads a record once; a replay decodes in full) and at
    most ``limit`` are kept per topic, oldest dropped first, so a consumer that lags (or runs in
    another worker) costs a full decode, never unbounded memory. Thread-safe: the outbox remembers
    on the event loop, a test may decode elsewhere.
    """

    def __init__(self, topics: frozenset[str] = frozenset(), limit: int = 20_000) -> None:
        self.topics, self.limit = topics, limit
        self._lock = threading.Lock()
        self._by_topic: dict[str, OrderedDict[bytes, BaseModel]] = {t: OrderedDict() for t in topics}
        self.hits = self.misses = 0

    def remember(self, topic: str, value: bytes, record: BaseModel) -> None:
        entries = self._by_topic.get(topic)
        if entries is None:
            return
        with self._lock:
            entries[value] = record
            if len(entries) > self.limit:
                entries.popitem(last=False)

    def take(self, topic: str, value: bytes) -> BaseModel | None:
        entries = self._by_topic.get(topic)
        if entries is None:
            return None
        with self._lock:
            record = entries.pop(value, None)
            if record is None:
                self.misses += 1
            else:
                self.hits += 1
            return record


def decode(raw: Raw, model: type[T], stage: str, produced: Produced | None = None) -> tuple[T | None, DlqRecord | None]:
    """(event, None) for a good record, (None, dlq record) for anything else.

    ``produced``: records this process encoded itself (``Produced``); a byte-identical value is
    returned as the event it was encoded from, without parsing it again.
    """
    event, bad, _ = decode_own(raw, model, stage, produced)
    return event, bad


def decode_own(raw: Raw, model: type[T], stage: str, produced: Produced | None
               ) -> tuple[T | None, DlqRecord | None, bytes | None]:
    """``decode``, and the value when it was this process's own record (it is then exactly
    ``to_json_bytes`` of the event, which the join reuses for its changelog), else None."""
    value = raw.value
    if value is None:
        return None, dead_letter(raw, stage, "empty_record", "record has no value"), None
    if len(value) > MAX_RECORD_BYTES:
        return (None, dead_letter(raw, stage, "oversize", f"record is {len(value)} bytes (max {MAX_RECORD_BYTES})"),
                None)
    if produced is not None:
        known = produced.take(raw.topic, value)
        if isinstance(known, model):
            return known, None, value
    event, bad = _parse(raw, value, model, stage)
    return event, bad, None


def _parse(raw: Raw, value: bytes, model: type[T], stage: str) -> tuple[T | None, DlqRecord | None]:
    try:
        # Fast path: pydantic parses and validates the bytes in one pass (about half the cost of
        # json.loads + validating the dict). Every good record takes it; anything it rejects goes
        # through the steps below, which name the reason the same way as before.
        return model.model_validate_json(value), None
    except ValidationError:
        pass
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as err:
        return None, dead_letter(raw, stage, "not_utf8", f"not UTF-8: {err.reason} at byte {err.start}")
    try:
        obj: Any = json.loads(text)
    except json.JSONDecodeError as err:
        return None, dead_letter(raw, stage, "not_json", f"not JSON: {err.msg} at column {err.colno}")
    except RecursionError:
        return None, dead_letter(raw, stage, "too_deep", "JSON nested too deeply to parse; send a flat object")
    event_id = obj.get("event_id") if isinstance(obj, dict) and isinstance(obj.get("event_id"), str) else None
    if isinstance(obj, dict) and obj.get("schema_version") not in (None, 1):
        version = obj.get("schema_version")
        return None, dead_letter(raw, stage, "unknown_schema_version",
                                 f"schema_version {version!r} is not supported (this worker knows 1)", event_id)
    try:
        return validate_model(model, obj, model.__name__), None
    except SchemaViolation as err:
        return None, dead_letter(raw, stage, "schema_violation", str(err), event_id)
