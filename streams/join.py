"""The join agent: labels × exports by project_id → ``toneflow.accepted``.

State lives in a Faust table (changelog-backed, so it survives restarts) keyed by project_id:
``{"p": partition, "t": last touched (unix s), "labels": {event_id: label}, "exports": {event_id:
export}}``. Labels and exports are co-partitioned (same key, same partition count, Java-compatible
hashing in every producer), so one project's state lives in one partition.

Accept rule: a labelled prompt of an exported project is accepted by the earliest export at or
after the prompt's timestamp. The training label is the export's ``final_edit`` when the user
tweaked the suggestion (``label_source="user_corrected"``), else the teacher's edit. Apps send one
prompt per project in the common case; when a project holds several prompts the export accepts
each of them, and a final_edit labels each.

State updates are set-like (keyed by event_id), so replays and duplicate events change nothing;
a replay may emit an accepted example again, which the sink de-duplicates by event_id. Entries
untouched for ``TONEFLOW_JOIN_TTL_S`` are swept; exports that expire unmatched are counted in the
DLQ (``unmatched_export``) rather than dropped silently.

Records are handled one at a time (the table's changelog partition is the current record's), and
each record is acked only after what it emitted *and its table update* are acknowledged by the
broker, so committed offsets never run ahead of the changelog.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from schemas.edit import look_slice
from schemas.events import (
    TOPIC_ACCEPTED,
    TOPIC_DLQ,
    TOPIC_EXPORTS,
    TOPIC_LABELS,
    AcceptedExample,
    DlqRecord,
    ExportEvent,
    LabelEvent,
    SourceRef,
)
from streams.codec import decode, raw_of
from streams.outputs import deliver
from streams.pipeline import JOIN_TABLE, Pipeline

log = logging.getLogger(__name__)
SWEEP_EVERY_S = 30.0


def label_quality(label: LabelEvent, user_corrected: bool) -> float:
    """A coarse label-quality score in [0, 1]: each teacher repair costs 0.25; a user's edit is 1."""
    if user_corrected:
        return 1.0
    return max(0.0, 1.0 - 0.25 * len(label.repairs))


def accept(label: LabelEvent, export: ExportEvent, export_src: SourceRef | None,
           label_src: SourceRef | None) -> AcceptedExample:
    corrected = export.final_edit is not None
    edit = export.final_edit if export.final_edit is not None else label.edit
    return AcceptedExample(
        event_id=label.event_id, project_id=label.project_id, user_id=label.user_id, prompt=label.prompt,
        edit=edit, label_source="user_corrected" if corrected else "teacher", teacher_edit=label.edit,
        teacher=label.teacher, teacher_tokens=label.tokens, teacher_cost=label.cost, look_slice=look_slice(edit),
        quality=label_quality(label, corrected), served_by=label.served_by, served_edit=label.served_edit,
        export_event_id=export.event_id, prompt_ts=label.prompt_ts, export_ts=export.ts,
        label_source_ref=label_src, export_source_ref=export_src,
    )


def matches(state: dict[str, Any], current: str, is_label: bool) -> list[AcceptedExample]:
    """Accepted examples that the record ``current`` (a label or an export event_id) completes.

    A label is accepted by the earliest export at or after its prompt; an arriving label emits its
    own example, an arriving export emits the examples it is the earliest match for. Nothing is
    suppressed by "already emitted" bookkeeping: a replayed record emits the same example again and
    the sink de-duplicates it, so a crash between the table update and the produce loses nothing.
    """
    out = []
    exports = sorted(((ExportEvent.model_validate(x["e"]), x["src"]) for x in state["exports"].values()),
                     key=lambda pair: pair[0].ts)
    for event_id, item in state["labels"].items():
        if is_label and event_id != current:
            continue
        label = LabelEvent.model_validate(item["e"])
        first = next(((x, src) for x, src in exports if x.ts >= label.prompt_ts), None)
        if first is None or (not is_label and first[0].event_id != current):
            continue
        export, src = first
        out.append(accept(label, export, SourceRef(**src) if src else None,
                          SourceRef(**item["src"]) if item["src"] else None))
    return out


def register(pipe: Pipeline) -> None:
    app, ttl = pipe.app, pipe.settings.join_ttl_s
    table = app.Table(JOIN_TABLE, default=None, partitions=pipe.settings.topic_partitions)
    last_sweep: dict[int, float] = {}

    async def sweep(partition: int, now: float) -> list[tuple[str, str | None, Any]]:
        """Drop this partition's projects untouched for the TTL; report exports that never matched."""
        if now - last_sweep.get(partition, now) < SWEEP_EVERY_S:
            last_sweep.setdefault(partition, now)
            return []
        last_sweep[partition] = now
        expired = [k for k, v in list(table.items()) if v and v["p"] == partition and now - v["t"] > ttl]
        out: list[tuple[str, str | None, Any]] = []
        for key in expired:
            state = table[key]
            if not state["emitted"]:
                for x in state["exports"].values():
                    src = x["src"]
                    out.append((TOPIC_DLQ, key, DlqRecord(
                        stage="join.expire", error_kind="unmatched_export",
                        error=f"no labelled prompt for project {key} within {ttl:.0f} s",
                        source=SourceRef(**src) if src else None, key=key, raw=str(x["e"])[:2000],
                        event_id=x["e"].get("event_id"))))
            del table[key]
        pipe.count("join_expired", len(expired))
        return out

    both = app.topic(TOPIC_LABELS, TOPIC_EXPORTS, key_type=bytes, value_type=bytes,
                     key_serializer="raw", value_serializer="raw")

    @app.agent(both, name="join", concurrency=1)
    async def join(stream: Any) -> None:
        async for event in stream.noack().events():
            raw = raw_of(event)
            is_label = raw.topic == TOPIC_LABELS
            record: LabelEvent | ExportEvent | None
            record, bad = decode(raw, LabelEvent if is_label else ExportEvent, "join.decode")  # type: ignore[assignment]
            outputs: list[tuple[str, str | None, Any]] = []
            now = time.time()
            if record is None:
                assert bad is not None  # decode returns exactly one of the two
                outputs.append((TOPIC_DLQ, raw.key.decode(errors="replace") if raw.key else None, bad))
            else:
                key = record.project_id
                state = table.get(key) or {"p": raw.partition, "labels": {}, "exports": {}, "emitted": []}
                bucket = state["labels"] if is_label else state["exports"]
                bucket[record.event_id] = {"e": record.model_dump(mode="json"),
                                           "src": raw.source.model_dump()}
                accepted = matches(state, record.event_id, is_label)
                state["emitted"] = sorted({*state["emitted"], *(a.event_id for a in accepted)})
                state["t"] = now
                table[key] = state
                outputs += [(TOPIC_ACCEPTED, a.project_id, a) for a in accepted]
                pipe.count("accepted", len(accepted))
            outputs += await sweep(raw.partition, now)
            await deliver(pipe, outputs)
            # The table update went to its changelog through Faust's send buffer; wait for it too, or
            # a crash after the commit would forget this record's state (and lose its match).
            await app.producer.flush()
            await stream.ack(event)
