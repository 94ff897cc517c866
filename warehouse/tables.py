"""Table schemas of the stream-fed tables, and how an event becomes a row.

Every stream row carries lineage: ``src_topic``/``src_partition``/``src_offset`` say where it was
read from the log, so any row can be traced back and the warehouse rebuilt by replaying the log.
Edits are stored as canonical edit JSON text (schemas.canonical_json). Timestamps are UTC.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pyarrow as pa

from schemas import Edit, canonical_json
from schemas.events import AcceptedExample, DlqRecord, ExportEvent, LabelEvent, PromptEvent, ServedBy
from schemas.text import normalise_prompt

TS = pa.timestamp("us", tz="UTC")


class Source(NamedTuple):
    """Where a record was read: topic, partition, offset."""

    topic: str
    partition: int
    offset: int


_LINEAGE = [("src_topic", pa.string()), ("src_partition", pa.int32()), ("src_offset", pa.int64()),
            ("ingested_at", TS)]
_SERVED = [("served_model", pa.string()), ("served_version", pa.string()), ("served_variant", pa.string()),
           ("served_edit", pa.string())]

SCHEMAS: dict[str, pa.Schema] = {
    "prompts": pa.schema([
        ("event_id", pa.string()), ("project_id", pa.string()), ("user_id", pa.string()), ("ts", TS),
        ("prompt", pa.string()), ("prompt_norm", pa.string()), *_SERVED, *_LINEAGE,
    ]),
    "exports": pa.schema([
        ("event_id", pa.string()), ("project_id", pa.string()), ("user_id", pa.string()), ("ts", TS),
        ("final_edit", pa.string()), *_LINEAGE,
    ]),
    "labels": pa.schema([
        ("event_id", pa.string()), ("project_id", pa.string()), ("user_id", pa.string()),
        ("prompt", pa.string()), ("prompt_norm", pa.string()), ("prompt_ts", TS), ("ts", TS),
        ("edit", pa.string()), ("teacher_model", pa.string()), ("teacher_version", pa.string()),
        ("repairs", pa.string()), ("n_repairs", pa.int32()), ("latency_ms", pa.float64()),
        ("prompt_tokens", pa.int64()), ("completion_tokens", pa.int64()), ("cost", pa.float64()),
        ("cached", pa.bool_()), ("reused_served_edit", pa.bool_()), *_SERVED,
        ("prompt_src_topic", pa.string()), ("prompt_src_partition", pa.int32()), ("prompt_src_offset", pa.int64()),
        *_LINEAGE,
    ]),
    "accepted_examples": pa.schema([
        ("event_id", pa.string()), ("project_id", pa.string()), ("user_id", pa.string()),
        ("prompt", pa.string()), ("prompt_norm", pa.string()), ("edit", pa.string()),
        ("label_source", pa.string()), ("teacher_edit", pa.string()), ("teacher_model", pa.string()),
        ("teacher_version", pa.string()), ("teacher_tokens", pa.int64()), ("teacher_cost", pa.float64()),
        *_SERVED, ("export_event_id", pa.string()), ("prompt_ts", TS), ("export_ts", TS), ("ts", TS),
        ("look_slice", pa.string()), ("quality", pa.float64()),
        ("label_src_topic", pa.string()), ("label_src_partition", pa.int32()), ("label_src_offset", pa.int64()),
        ("export_src_topic", pa.string()), ("export_src_partition", pa.int32()), ("export_src_offset", pa.int64()),
        *_LINEAGE,
    ]),
    "dlq": pa.schema([
        ("stage", pa.string()), ("error_kind", pa.string()), ("error", pa.string()),
        ("bad_topic", pa.string()), ("bad_partition", pa.int32()), ("bad_offset", pa.int64()),
        ("key", pa.string()), ("raw", pa.string()), ("raw_truncated", pa.bool_()), ("event_id", pa.string()),
        ("ts", TS), *_LINEAGE,
    ]),
}
STREAM_TABLES = tuple(SCHEMAS)


def _edit(edit: Edit | None) -> str | None:
    return None if edit is None else canonical_json(edit)


def _served(served_by: ServedBy | None, served_edit: Edit | None) -> dict[str, Any]:
    return {
        "served_model": served_by.model if served_by else None,
        "served_version": served_by.version if served_by else None,
        "served_variant": served_by.variant if served_by else None,
        "served_edit": _edit(served_edit),
    }


def _lineage(src: Source) -> dict[str, Any]:
    return {"src_topic": src.topic, "src_partition": src.partition, "src_offset": src.offset,
            "ingested_at": datetime.now(UTC)}


def prompt_row(e: PromptEvent, src: Source) -> dict[str, Any]:
    return {"event_id": e.event_id, "project_id": e.project_id, "user_id": e.user_id, "ts": e.ts,
            "prompt": e.prompt, "prompt_norm": normalise_prompt(e.prompt),
            **_served(e.served_by, e.served_edit), **_lineage(src)}


def export_row(e: ExportEvent, src: Source) -> dict[str, Any]:
    return {"event_id": e.event_id, "project_id": e.project_id, "user_id": e.user_id, "ts": e.ts,
            "final_edit": _edit(e.final_edit), **_lineage(src)}


def label_row(e: LabelEvent, src: Source) -> dict[str, Any]:
    ps = e.source
    return {
        "event_id": e.event_id, "project_id": e.project_id, "user_id": e.user_id, "prompt": e.prompt,
        "prompt_norm": normalise_prompt(e.prompt), "prompt_ts": e.prompt_ts, "ts": e.ts, "edit": _edit(e.edit),
        "teacher_model": e.teacher.model, "teacher_version": e.teacher.version,
        "repairs": json.dumps(e.repairs), "n_repairs": len(e.repairs), "latency_ms": e.latency_ms,
        "prompt_tokens": e.prompt_tokens, "completion_tokens": e.completion_tokens, "cost": e.cost,
        "cached": e.cached, "reused_served_edit": e.reused_served_edit, **_served(e.served_by, e.served_edit),
        "prompt_src_topic": ps.topic if ps else None, "prompt_src_partition": ps.partition if ps else None,
        "prompt_src_offset": ps.offset if ps else None, **_lineage(src),
    }


def accepted_row(e: AcceptedExample, src: Source) -> dict[str, Any]:
    lr, xr = e.label_source_ref, e.export_source_ref
    return {
        "event_id": e.event_id, "project_id": e.project_id, "user_id": e.user_id, "prompt": e.prompt,
        "prompt_norm": normalise_prompt(e.prompt), "edit": _edit(e.edit), "label_source": e.label_source,
        "teacher_edit": _edit(e.teacher_edit), "teacher_model": e.teacher.model,
        "teacher_version": e.teacher.version, "teacher_tokens": e.teacher_tokens, "teacher_cost": e.teacher_cost,
        **_served(e.served_by, e.served_edit), "export_event_id": e.export_event_id, "prompt_ts": e.prompt_ts,
        "export_ts": e.export_ts, "ts": e.ts, "look_slice": e.look_slice, "quality": e.quality,
        "label_src_topic": lr.topic if lr else None, "label_src_partition": lr.partition if lr else None,
        "label_src_offset": lr.offset if lr else None, "export_src_topic": xr.topic if xr else None,
        "export_src_partition": xr.partition if xr else None, "export_src_offset": xr.offset if xr else None,
        **_lineage(src),
    }


def dlq_row(e: DlqRecord, src: Source) -> dict[str, Any]:
    bad = e.source
    return {
        "stage": e.stage, "error_kind": e.error_kind, "error": e.error,
        "bad_topic": bad.topic if bad else None, "bad_partition": bad.partition if bad else None,
        "bad_offset": bad.offset if bad else None, "key": e.key, "raw": e.raw, "raw_truncated": e.raw_truncated,
        "event_id": e.event_id, "ts": e.ts, **_lineage(src),
    }
