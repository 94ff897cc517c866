"""The join stage: labels × exports by project_id → ``toneflow.accepted`` (group ``toneflow-join``).

State is one ``JoinState`` per project_id (``streams/join_state.py``), in memory, backed by the
changelog topic (``streams/changelog.py``). Labels and exports are co-partitioned (same key, same
partition count, Java-compatible hashing in every producer) and assigned by ``range``, so one
project's records, and its state, belong to one input partition, and the worker that owns input
partition p owns changelog partition p: on assignment it recovers the projects of its new
partitions from their changelog partitions, before it handles any of their records; on
revocation it forgets the projects of partitions it no longer owns.

Accept rule: a labelled prompt of an exported project is accepted by the earliest export at or
after the prompt's timestamp. The training label is the export's ``final_edit`` when the user
tweaked the suggestion (``label_source="user_corrected"``), else the teacher's edit. Apps send one
prompt per project in the common case; when a project holds several prompts the export accepts
each of them, and a final_edit labels each.

State updates are set-like (keyed by event_id), so replays and duplicate events change nothing;
a replay may emit an accepted example again, which the sink de-duplicates by event_id. Projects
untouched for ``TONEFLOW_JOIN_TTL_S`` are swept; exports that expire unmatched are counted in the
DLQ (``unmatched_export``) rather than dropped silently. The sweep pops expired projects from an
``ExpiryIndex`` (oldest first), so it never scans the table on the hot path; the index is rebuilt
from the table once per rebalance (the only time the table's content changes under the stage).

Batches: the stage takes up to ``JOIN_BATCH`` records (or what arrived within ``JOIN_WITHIN_S``),
decodes each once, applies them to the state in log order (``Join.step``) and produces everything
the batch produced — accepted examples, DLQ records, and one changelog entry per project it
changed (a batch's changes to a project are one entry) — then lands the labels and exports in the
warehouse while it waits until the broker acknowledged *all* of it; only then are the batch's
offsets committed. The next batch may be begun meanwhile (``Stage.overlap``): its state changes
apply after this batch's and its changelog entries are produced after this batch's, so a
project's last entry is always its latest state. Committed offsets never run ahead of the
changelog or the outputs: a crash replays every unfinished batch onto the recovered state (which
may already hold their changes), which changes nothing but re-emits their examples.

Changelog partitions: a batch spans partitions, so each entry is sent explicitly to the partition
of the record that changed the project (``JoinState.partition``), never to "the current record's".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any

from schemas.edit import look_slice
from schemas.events import (
    SCHEMA_VERSION,
    TOPIC_ACCEPTED,
    TOPIC_DLQ,
    TOPIC_EXPORTS,
    TOPIC_LABELS,
    AcceptedExample,
    DlqRecord,
    ExportEvent,
    LabelEvent,
    SourceRef,
    construct,
    utcnow,
)
from streams import changelog
from streams.batch_stage import Outbox, Stage, TopicPartition, timed
from streams.changelog import ChangelogWrite
from streams.codec import Raw, decode_own
from streams.join_state import ExpiryIndex, JoinState
from streams.outputs import Output
from streams.pipeline import Pipeline
from streams.sink import Decoded, land

log = logging.getLogger(__name__)
SWEEP_EVERY_S = 30.0
JOIN_BATCH = 2000
JOIN_WITHIN_S = 0.1


def label_quality(label: LabelEvent, user_corrected: bool) -> float:
    """A coarse label-quality score in [0, 1]: each teacher repair costs 0.25; a user's edit is 1."""
    if user_corrected:
        return 1.0
    return max(0.0, 1.0 - 0.25 * len(label.repairs))


def accept(label: LabelEvent, export: ExportEvent, export_src: SourceRef | None,
           label_src: SourceRef | None) -> AcceptedExample:
    corrected = export.final_edit is not None
    edit = export.final_edit if export.final_edit is not None else label.edit
    # Not validated (schemas.events.construct, every field given): every field comes from events
    # validated when they were decoded (or is computed here within its bounds); validating them
    # again was a third of the join's time.
    return construct(
        AcceptedExample, event_id=label.event_id, project_id=label.project_id, user_id=label.user_id, prompt=label.prompt,
        edit=edit, label_source="user_corrected" if corrected else "teacher", teacher_edit=label.edit,
        teacher=label.teacher, teacher_tokens=label.tokens, teacher_cost=label.cost, look_slice=look_slice(edit),
        quality=label_quality(label, corrected), served_by=label.served_by, served_edit=label.served_edit,
        export_event_id=export.event_id, prompt_ts=label.prompt_ts, export_ts=export.ts,
        label_source_ref=label_src, export_source_ref=export_src, ts=utcnow(), schema_version=SCHEMA_VERSION,
    )


def matches(state: JoinState, current: str, is_label: bool) -> list[AcceptedExample]:
    """Accepted examples that the record ``current`` (a label or an export event_id) completes.

    A label is accepted by the earliest export at or after its prompt; an arriving label emits its
    own example, an arriving export emits the examples it is the earliest match for. Nothing is
    suppressed by "already emitted" bookkeeping: a replayed record emits the same example again and
    the sink de-duplicates it, so a crash between the table update and the produce loses nothing.
    """
    if not state.exports or not state.labels:
        return []
    exports = sorted(state.exports.values(), key=lambda x: x.event.ts)
    labels = [state.labels[current]] if is_label else state.labels.values()
    out = []
    for item in labels:
        label = item.event
        first = next((x for x in exports if x.event.ts >= label.prompt_ts), None)
        if first is None or (not is_label and first.event.event_id != current):
            continue
        out.append(accept(label, first.event, first.src, item.src))
    return out


def unmatched_exports(key: str, state: JoinState, ttl: float) -> list[Output]:
    """DLQ records for the exports of an expiring project that never accepted anything."""
    if state.emitted:
        return []
    return [(TOPIC_DLQ, key, DlqRecord(
        stage="join.expire", error_kind="unmatched_export",
        error=f"no labelled prompt for project {key} within {ttl:.0f} s", source=x.src, key=key,
        raw=x.event.model_dump_json(exclude_none=True)[:2000], event_id=x.event.event_id))
        for x in state.exports.values()]


class Join:
    """The join's state handling, apart from the consumer: ``step`` applies one batch.

    ``store`` maps project key -> JoinState, or -> the changelog bytes of a state recovered and
    not decoded yet.
    """

    def __init__(self, pipe: Pipeline, store: Any) -> None:
        self.pipe, self.store = pipe, store
        self.ttl = pipe.settings.join_ttl_s
        self.index = ExpiryIndex()
        self.generation: int | None = None
        self.last_sweep: dict[int, float] = {}

    def state(self, key: str) -> JoinState | None:
        value = self.store.get(key)
        if isinstance(value, (bytes, bytearray)):  # recovered from the changelog: decode once
            value = JoinState.from_bytes(value)
            self.store[key] = value
        return value

    def reindex(self, generation: int) -> None:
        """After a rebalance the table holds what recovery read: index it once, then never scan."""
        self.generation = generation
        self.index.rebuild((k, s) for k in list(self.store.keys()) if (s := self.state(k)) is not None)
        self.last_sweep.clear()

    def step(self, raws: list[Raw], now: float, decoded: list[Decoded] | None = None
             ) -> tuple[list[Output], list[ChangelogWrite]]:
        """Apply a batch in log order: (outputs to send, changelog entries to write).

        ``decoded``, when given, receives each record with its event (None if it did not decode).
        """
        outputs: list[Output] = []
        changed: dict[str, JoinState] = {}
        pipe = self.pipe
        produced = pipe.produced
        # Labels this worker's labeler produced come back as the events it encoded (``produced``:
        # byte-identical values only); everything else, exports always, is validated in full.
        # The whole batch is decoded first, then applied: each pass keeps its own code hot.
        parsed = [decode_own(raw, LabelEvent if raw.topic == TOPIC_LABELS else ExportEvent, "join.decode", produced)
                  for raw in raws]
        for raw, (record, bad, wire) in zip(raws, parsed):
            is_label = raw.topic == TOPIC_LABELS
            if decoded is not None:
                decoded.append((raw, record))
            if bad is not None:
                outputs.append((TOPIC_DLQ, raw.key.decode(errors="replace") if raw.key else None, bad))
                continue
            assert isinstance(record, (LabelEvent, ExportEvent))
            key = record.project_id
            state = changed.get(key) or self.state(key) or JoinState.empty(raw.partition, now)
            if isinstance(record, LabelEvent):
                state.add_label(record, raw.source, wire)
            else:
                state.add_export(record, raw.source)
            accepted = matches(state, record.event_id, is_label)
            state.emitted.update(a.event_id for a in accepted)
            state.touched = now
            changed[key] = state
            outputs += [(TOPIC_ACCEPTED, a.project_id, a) for a in accepted]
            pipe.count("accepted", len(accepted))
        writes: list[ChangelogWrite] = []
        for key, state in changed.items():
            self.store[key] = state
            self.index.touch(state.partition, key, now)
            writes.append((state.partition, key, state.to_bytes()))
        for partition in sorted({raw.partition for raw in raws}):
            outputs += self.sweep(partition, now, writes)
        return outputs, writes

    def sweep(self, partition: int, now: float, writes: list[ChangelogWrite]) -> list[Output]:
        """Drop this partition's projects untouched for the TTL; report exports that never matched."""
        if now - self.last_sweep.setdefault(partition, now) < SWEEP_EVERY_S:
            return []
        self.last_sweep[partition] = now
        out: list[Output] = []
        expired = 0
        for key in self.index.expired(partition, now - self.ttl):
            state = self.state(key)
            if state is None or state.partition != partition:
                continue
            if now - state.touched <= self.ttl:  # touched again by another path: keep, re-index
                self.index.touch(partition, key, state.touched)
                continue
            out += unmatched_exports(key, state, self.ttl)
            del self.store[key]
            writes.append((partition, key, None))
            expired += 1
        self.pipe.count("join_expired", expired)
        return out


class JoinStage(Stage):
    """The join on the batch engine (``streams/batch_stage.py``); see the module docstring."""

    name = "join"
    topics = (TOPIC_LABELS, TOPIC_EXPORTS)
    batch = JOIN_BATCH
    within_s = JOIN_WITHIN_S

    def __init__(self, pipe: Pipeline, outbox: Outbox) -> None:
        super().__init__(pipe, outbox)
        self.store: dict[str, Any] = {}
        self.joiner = Join(pipe, self.store)
        self.generation = 0

    def on_assign(self, added: set[TopicPartition], kept: set[TopicPartition]) -> None:
        keep = {p for _, p in kept}
        for key in [k for k, s in self.store.items() if s.partition not in keep]:
            del self.store[key]
        started = time.perf_counter()
        recovered = changelog.recover(self.pipe.settings, {p for _, p in added} - keep, self.group_id)
        self.store.update(recovered)
        self.pipe.add_time("join_recovery", started)
        self.pipe.count("join_recovered", len(recovered))
        self.generation += 1
        self.joiner.reindex(self.generation)

    async def begin(self, raws: list[Raw]) -> Awaitable[None]:
        pipe = self.pipe
        decoded: list[Decoded] = []
        with timed(pipe, "join_state", cpu=True):
            outputs, writes = self.joiner.step(raws, time.time(), decoded)
        # Produced here, batch after batch, so that a project's changelog entries reach its
        # partition in the order of its changes (the last one is what recovery reads).
        with timed(pipe, "join_send", cpu=True):
            self.outbox.send_all(outputs)
            changelog.write(self.outbox, writes)
        return self._finish(raws, decoded)

    async def _finish(self, raws: list[Raw], decoded: list[Decoded]) -> None:
        async def acknowledged() -> None:
            with timed(self.pipe, "join_produce"):
                await self.outbox.flush()

        async def landed() -> None:
            async with self.landing:
                await land(self.pipe, {TOPIC_LABELS: [d for d in decoded if d[0].topic == TOPIC_LABELS],
                                       TOPIC_EXPORTS: [d for d in decoded if d[0].topic == TOPIC_EXPORTS]})

        # Outputs and changelog entries acknowledged by the broker, labels and exports landed:
        # only then may the batch be committed (a crash before this replays the whole batch).
        await asyncio.gather(landed(), acknowledged())
        self.offsets.done(raws)
