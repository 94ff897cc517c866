"""Data can never crash a stage (issue 16): property tests on the per-record code of every agent.

Each stage gets records generated from the contracts (tests/contract_strategies.py): valid ones at
the extremes the contracts allow, near-valid mutations and junk. For every record the stage either
produces its output (an event, a label, a state change, a Parquet row) or a dead letter naming the
stage and the error; it never raises. What a stage hands on must also be readable by the next one,
because a record that decodes nowhere downstream would be neither a row nor a dead letter:
dead letters must fit and decode as ``DlqRecord``, labels as ``LabelEvent``, accepted examples as
``AcceptedExample``, join state must read back from its changelog bytes.

These are the pure functions the worker's agents call (streams/codec.py, guard.py, labeler.py,
join.py, sink.py, warehouse/tables.py and writer.py), so they hold whichever engine drives them;
tests/test_property_worker.py checks the same invariant through a running worker.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import duckdb
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from foundation.settings import Settings
from schemas.events import (
    INT32_MAX,
    INT64_MAX,
    TOPIC_ACCEPTED,
    TOPIC_DLQ,
    TOPIC_EXPORTS,
    TOPIC_LABELS,
    TOPIC_PROMPTS,
    AcceptedExample,
    DlqRecord,
    ExportEvent,
    LabelEvent,
    PromptEvent,
    ServedBy,
    to_json_bytes,
)
from schemas.trust import sign_served
from streams.codec import MAX_DLQ_BYTES, MAX_RECORD_BYTES, Raw, dead_letter, decode
from streams.guard import needs_teacher_call
from streams.join import Join
from streams.join_state import JoinState
from streams.labeler import split_batch, teacher_label, teacher_labels
from streams.pipeline import Pipeline
from streams.sink import SINKS, sort_out, write
from tests.contract_strategies import FAST, RECORD_LIMIT, records, topic_record, valid_bytes, wire_bytes
from warehouse import tables
from warehouse.layout import warehouse_root

KEY = b"k" * 32
_keys = st.one_of(st.none(), st.sampled_from([b"p0", b"", b"\xff\xfe", "\u202ep\x00".encode(), b"k" * 2000]))
_partitions = st.one_of(st.sampled_from([0, 1, INT32_MAX]), st.integers(0, INT32_MAX))
_offsets = st.one_of(st.sampled_from([0, INT64_MAX - 10_000]), st.integers(0, INT64_MAX - 10_000))


def _check_dead_letter(bad: DlqRecord, raw: Raw, stage: str) -> None:
    """A dead letter names stage, reason and source, and the DLQ sink can store it."""
    assert bad.stage == stage and bad.error_kind and bad.error, bad
    assert bad.source == raw.source
    wire = to_json_bytes(bad)
    assert len(wire) <= MAX_DLQ_BYTES
    back, err = decode(Raw(TOPIC_DLQ, 0, 0, None, wire), DlqRecord, "sink.dlq")
    assert err is None and back == bad, err
    assert tables.dlq_row(back, tables.Source(TOPIC_DLQ, 0, 0)).keys() == set(tables.SCHEMAS["dlq"].names)


# -- decode -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("topic", list(SINKS))
def test_decode_gives_an_event_or_a_dead_letter_never_an_exception(topic):
    model = SINKS[topic][1]

    seen: Counter[str] = Counter()

    @hsettings(FAST, max_examples=120)
    @given(value=wire_bytes(model), key=_keys, partition=_partitions, offset=_offsets)
    def check(value, key, partition, offset):
        raw = Raw(topic, partition, offset, key, value)
        event, bad = decode(raw, model, "test.decode")
        assert (event is None) != (bad is None)
        if bad is not None:
            _check_dead_letter(bad, raw, "test.decode")
            seen[bad.error_kind] += 1
        else:  # the wire form an agent writes reads back as the same event
            assert model.model_validate_json(to_json_bytes(event)) == event
            seen["event"] += 1

    check()
    assert seen["event"] >= 10 and seen["schema_violation"] >= 10 and len(seen) >= 4, seen


@pytest.mark.parametrize("topic", list(SINKS))
def test_every_record_the_contract_allows_decodes(topic):
    model = SINKS[topic][1]

    @hsettings(FAST, max_examples=80)
    @given(value=valid_bytes(model))
    def check(value):
        event, bad = decode(Raw(topic, 0, 0, None, value), model, "test.decode")
        if len(value) <= MAX_RECORD_BYTES:
            assert bad is None, bad
            assert isinstance(event, model)

    check()


# -- guard --------------------------------------------------------------------------------------------

def test_guard_decides_for_every_prompt():
    @hsettings(FAST, max_examples=150)
    @given(obj=records(PromptEvent), sign=st.booleans())
    def check(obj, sign):
        prompt = PromptEvent.model_validate(obj)
        if sign and prompt.served_by is not None and prompt.served_edit is not None:
            sig = sign_served(KEY, prompt.prompt, prompt.served_by, prompt.served_edit)
            prompt = prompt.model_copy(update={"served_sig": sig})
        needs = needs_teacher_call(prompt, KEY)
        assert isinstance(needs, bool)
        served: ServedBy | None = prompt.served_by
        teacher_vouched = sign and served is not None and served.by_teacher and prompt.served_edit is not None
        assert needs is not teacher_vouched

    check()


# -- labeler ------------------------------------------------------------------------------------------

class _Labeling:
    """The labeler's per-batch path (split_batch, then the teacher call and teacher_label) without Faust."""

    def __init__(self, data_dir: Path) -> None:
        from teacher.offline import OfflineTeacher

        teacher = OfflineTeacher(cache_dir=data_dir / "cache")
        teacher.warm()
        self.pipe = Pipeline(settings=Settings(data_dir=data_dir, serve_signing_key=KEY.decode()), teacher=teacher)

    def run(self, raws: list[Raw]) -> list[tuple[int, str, object]]:
        """(index of the input record, topic, record) for every output of the batch."""
        outputs, ready, held = split_batch(self.pipe, [(raw, i) for i, raw in enumerate(raws)])
        assert len(outputs) == len(ready)  # each record handled at once has exactly one output
        out = [(i, topic, record) for i, (topic, _key, record) in zip(ready, outputs)]
        assert sorted([*ready, *(i for _, _, i in held)]) == list(range(len(raws)))  # each record exactly once
        if held:
            labels = asyncio.run(teacher_labels(self.pipe, [p.prompt for p, _, _ in held]))
            for prompt, raw, i in held:
                topic, _key, record = teacher_label(prompt, raw, labels[prompt.prompt])
                out.append((i, topic, record))
        return out


@pytest.fixture(scope="module")
def labeling(tmp_path_factory: pytest.TempPathFactory) -> _Labeling:
    return _Labeling(tmp_path_factory.mktemp("labeler"))


@st.composite
def _prompt_raws(draw: st.DrawFn) -> list[Raw]:
    values = draw(st.lists(wire_bytes(PromptEvent), min_size=1, max_size=8))
    if draw(st.booleans()):  # a prompt the serving layer vouches for: its served edit is the label
        obj = draw(records(PromptEvent).filter(lambda o: isinstance(o.get("served_edit"), dict)))
        prompt = PromptEvent.model_validate({**obj, "served_by": {"kind": "teacher", "model": "m", "version": "v",
                                                                  "variant": "A"}})
        assert prompt.served_by is not None and prompt.served_edit is not None
        signed = prompt.model_copy(update={"served_sig": sign_served(KEY, prompt.prompt, prompt.served_by,
                                                                     prompt.served_edit)})
        values.append(to_json_bytes(signed))
    first = draw(_offsets)
    return [Raw(TOPIC_PROMPTS, draw(_partitions), first + i, draw(_keys), v) for i, v in enumerate(values)]


def test_labeler_labels_or_dead_letters_every_prompt(labeling):
    seen: Counter[str] = Counter()

    @hsettings(FAST, max_examples=60)
    @given(raws=_prompt_raws())
    def check(raws):
        for i, topic, record in labeling.run(raws):
            raw = raws[i]
            if topic == TOPIC_DLQ:
                assert isinstance(record, DlqRecord)
                _check_dead_letter(record, raw, record.stage)
                assert record.stage in ("labeler.decode", "labeler.teacher")
                seen["dlq"] += 1
                continue
            assert topic == TOPIC_LABELS and isinstance(record, LabelEvent)
            seen["reused" if record.reused_served_edit else "teacher"] += 1
            assert record.source == raw.source
            # the join and the labels sink read it back from the wire (an oversized one included)
            back, bad = decode(Raw(TOPIC_LABELS, 0, 0, None, to_json_bytes(record)), LabelEvent, "join.decode")
            assert bad is None and back == record, bad

    check()
    assert min(seen["dlq"], seen["reused"], seen["teacher"]) >= 5, seen


# -- join ---------------------------------------------------------------------------------------------

def _join_pipe() -> Pipeline:
    return Pipeline(Settings(data_dir="unused", join_ttl_s=60.0))


_join_records = st.sampled_from([TOPIC_LABELS, TOPIC_EXPORTS]).flatmap(topic_record)


def test_join_step_accepts_or_dead_letters_every_record():
    seen: Counter[str] = Counter()

    @hsettings(FAST, max_examples=40)
    @given(records_=st.lists(_join_records, min_size=8, max_size=20), cuts=st.lists(st.integers(1, 30), max_size=3),
           partition=st.integers(0, 3), gap=st.sampled_from([0.0, 1.0, 1000.0]))
    def check(records_, cuts, partition, gap):
        raws = [Raw(topic, partition, i, key, value) for i, (topic, key, value) in enumerate(records_)]
        join = Join(_join_pipe(), {})
        now, start = 1_000_000.0, 0
        for cut in [*cuts, len(raws)]:  # a few batches, with time passing (the TTL sweep runs too)
            batch, start = raws[start:start + cut], start + cut
            if not batch:
                continue
            outputs, writes = join.step(batch, now)
            now += gap
            bad_in_batch = sum(decode(r, LabelEvent if r.topic == TOPIC_LABELS else ExportEvent, "x")[1] is not None
                               for r in batch)
            decode_dlq = [rec for topic, _, rec in outputs if topic == TOPIC_DLQ and rec.stage == "join.decode"]
            assert len(decode_dlq) == bad_in_batch
            for topic, _key, record in outputs:
                seen[topic] += 1
                if topic == TOPIC_DLQ:
                    assert isinstance(record, DlqRecord) and record.stage in ("join.decode", "join.expire")
                    assert len(to_json_bytes(record)) <= MAX_DLQ_BYTES
                    DlqRecord.model_validate_json(to_json_bytes(record))
                else:  # nothing downstream dead-letters the accepted topic: every example must be valid
                    assert topic == TOPIC_ACCEPTED
                    wire = to_json_bytes(record)
                    assert len(wire) <= MAX_RECORD_BYTES, len(wire)  # its sink would skip it as oversize
                    assert AcceptedExample.model_validate_json(wire) == AcceptedExample.model_validate(record.model_dump())
            for _partition, key, value in writes:  # a restarted worker recovers the state from these
                if value is not None:
                    assert JoinState.from_bytes(value) == join.state(key)
                    seen["changelog"] += 1

    check()
    assert min(seen[TOPIC_ACCEPTED], seen[TOPIC_DLQ], seen["changelog"]) >= 5, seen


# -- sinks --------------------------------------------------------------------------------------------

@st.composite
def _dead_letters(draw: st.DrawFn) -> bytes:
    """DLQ records as the agents write them, about any record at all."""
    topic = draw(st.sampled_from([TOPIC_PROMPTS, TOPIC_LABELS, TOPIC_EXPORTS]))
    raw = Raw(topic, draw(_partitions), draw(_offsets), draw(_keys), draw(wire_bytes(SINKS[topic][1])))
    return to_json_bytes(dead_letter(raw, draw(st.sampled_from(["labeler.decode", "join.decode", "\x00stage\u202e"])),
                                     "schema_violation", draw(st.text(max_size=3000)), draw(st.none() | st.text())))


def _fits(value: bytes) -> bool:
    return len(value) <= RECORD_LIMIT


@pytest.mark.parametrize("topic", list(SINKS))
def test_sink_writes_a_row_for_every_record_it_stores(topic, tmp_path_factory):
    table, model, _ = SINKS[topic]
    values = st.one_of(valid_bytes(model), wire_bytes(model))
    if topic == TOPIC_DLQ:
        values = st.one_of(values, _dead_letters())
    # Every batch holds at least one record the sink must store, so the floor below holds by
    # construction: how many of the drawn values are storable varies with the modules imported
    # before this test (Hypothesis draws constants from loaded code), and 24 of 40 batches once were.
    storable = valid_bytes(model).filter(_fits)

    written: list[int] = []

    @hsettings(FAST, max_examples=40)
    @given(batch=st.lists(st.tuples(values, _keys, st.integers(0, 2)), min_size=3, max_size=11), first=_offsets,
           sure=st.tuples(storable, _keys, st.integers(0, 2)), at=st.integers(0, 11))
    def check(batch, first, sure, at):
        batch = [*batch[:at], sure, *batch[at:]]
        settings = Settings(data_dir=tmp_path_factory.mktemp("wh"))
        raws = [Raw(topic, partition, first + i, key, value) for i, (value, key, partition) in enumerate(batch)]
        # a record of the DLQ topic that does not decode is stored as its own dead letter
        good = {r.offset for r in raws if topic == TOPIC_DLQ or decode(r, model, "x")[1] is None}
        pipe = Pipeline(settings=settings)
        items, _dead = sort_out(topic, raws)
        assert write(pipe, topic, items) == len(good)
        files = sorted(str(p) for p in warehouse_root(settings).rglob("*.parquet")) if good else []
        if good:
            got = duckdb.sql(f"SELECT src_offset FROM read_parquet({files})").fetchall()
            assert sorted(o for (o,) in got) == sorted(good)
        written.append(len(good))

    check()
    assert sum(written) >= 25, "the strategies must give the sink records it can store"
