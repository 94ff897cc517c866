"""Decoding raw Kafka records into events, with errors as a second output.

Faust acks and skips records it cannot decode (reliability.md §2.3), so every toneflow topic is
consumed as raw bytes and decoded here: a record either becomes an event or a ``DlqRecord`` that
names its topic/partition/offset, the stage and the reason. Nothing raises on bad data.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple, TypeVar

from pydantic import BaseModel, ValidationError

from schemas.events import DlqRecord, SourceRef
from schemas.exceptions import SchemaViolation
from schemas.validation import validate_model

MAX_RECORD_BYTES = 64 * 1024  # a prompt event is < 2 KB; anything this large is not a real event
MAX_RAW_KEPT = 16 * 1024      # bytes of a bad record kept in the DLQ

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
        return SourceRef(topic=self.topic, partition=self.partition, offset=self.offset)

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


def raw_of(event: Any) -> Raw:
    """The record behind a Faust event, as it came off the log."""
    m = event.message
    return Raw(m.topic, m.partition, m.offset, m.key, m.value)


def dead_letter(raw: Raw, stage: str, error_kind: str, error: str, event_id: str | None = None) -> DlqRecord:
    value = raw.value or b""
    return DlqRecord(
        stage=stage, error_kind=error_kind, error=error[:2000], source=raw.source,
        key=raw.key.decode("utf-8", errors="backslashreplace") if raw.key else None,
        raw=value[:MAX_RAW_KEPT].decode("utf-8", errors="backslashreplace"),
        raw_truncated=len(value) > MAX_RAW_KEPT, event_id=event_id,
    )


def decode(raw: Raw, model: type[T], stage: str) -> tuple[T | None, DlqRecord | None]:
    """(event, None) for a good record, (None, dlq record) for anything else."""
    value = raw.value
    if value is None:
        return None, dead_letter(raw, stage, "empty_record", "record has no value")
    if len(value) > MAX_RECORD_BYTES:
        return None, dead_letter(raw, stage, "oversize", f"record is {len(value)} bytes (max {MAX_RECORD_BYTES})")
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
    event_id = obj.get("event_id") if isinstance(obj, dict) and isinstance(obj.get("event_id"), str) else None
    if isinstance(obj, dict) and obj.get("schema_version") not in (None, 1):
        version = obj.get("schema_version")
        return None, dead_letter(raw, stage, "unknown_schema_version",
                                 f"schema_version {version!r} is not supported (this worker knows 1)", event_id)
    try:
        return validate_model(model, obj, model.__name__), None
    except SchemaViolation as err:
        return None, dead_letter(raw, stage, "schema_violation", str(err), event_id)
