"""The worker's shortcuts on its own records: taken back by exact bytes, landed as columns.

``streams.codec.Produced`` hands a stage the event this process encoded when a consumed value is
byte-identical to it, and nothing else; ``warehouse.tables.to_columns`` / ``write_columns`` must
give exactly the rows and files that ``to_row`` / ``write_batch`` give.
"""

import json
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest

from foundation.settings import Settings
from schemas import validate_edit
from schemas.events import (
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
    SourceRef,
    TeacherRef,
    to_json_bytes,
)
from streams.codec import MAX_RECORD_BYTES, Produced, Raw, decode
from streams.join import accept
from warehouse import tables
from warehouse.layout import data_files
from warehouse.writer import write_batch, write_columns

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
SERVED = ServedBy(kind="teacher", model="offline", version="v1", variant="a")
EDIT = validate_edit({"adjust": {"temperature": 30, "contrast": -5}, "filter": {"name": "vivid_Pop", "intensity": 40}})
OTHER = validate_edit({"selective_adjust": {"blue": {"saturation": 20}}})


def _label(i: int, **kw) -> LabelEvent:
    fields = {"event_id": f"e{i}", "project_id": f"p{i}", "user_id": "u", "prompt": f"  Golden hour {i}!! ",
              "prompt_ts": T0 + timedelta(seconds=i), "teacher": TeacherRef(model="offline", version="v"),
              "edit": EDIT, "latency_ms": 1.5, "ts": T0, **kw}
    return LabelEvent(**fields)


def _events() -> dict[str, list]:
    labels = [_label(0), _label(1, repairs=["clamped"], served_by=SERVED, served_edit=OTHER, cost=0.25,
                                 source=SourceRef(topic=TOPIC_PROMPTS, partition=3, offset=9)),
              _label(2, prompt_tokens=12, completion_tokens=30, cached=True)]
    exports = [ExportEvent(event_id="x0", project_id="p0", user_id="u", ts=T0 + timedelta(hours=1)),
               ExportEvent(event_id="x1", project_id="p1", user_id="u", ts=T0 + timedelta(hours=2), final_edit=OTHER)]
    src = SourceRef(topic=TOPIC_EXPORTS, partition=1, offset=4)
    return {
        "prompts": [PromptEvent(event_id="e0", project_id="p0", user_id="u", ts=T0, prompt="Golden HOUR"),
                    PromptEvent(event_id="e1", project_id="p1", user_id="u", ts=T0, prompt="b&w", served_by=SERVED,
                                served_edit=EDIT, served_sig="ab" * 32)],
        "exports": exports,
        "labels": labels,
        "accepted_examples": [accept(labels[0], exports[0], None, None), accept(labels[1], exports[1], src, labels[1].source)],
        "dlq": [DlqRecord(stage="join.decode", error_kind="not_json", error="x", raw="{", ts=T0),
                DlqRecord(stage="sink", error_kind="oversize", error="y", raw="z", raw_truncated=True, key="k",
                          event_id="e9", source=SourceRef(topic=TOPIC_LABELS, partition=0, offset=2), ts=T0)],
    }


@pytest.mark.parametrize("table", list(tables.SCHEMAS))
def test_columns_hold_exactly_the_rows_to_row_builds(table):
    events = _events()[table]
    offsets = [5 + 3 * i for i in range(len(events))]
    now = datetime.now(UTC)
    columns = tables.to_columns(table, events, "t", 2, offsets, now)
    assert list(columns) == tables.SCHEMAS[table].names
    rows = [{**tables.to_row(table, e, tables.Source("t", 2, o)), "ingested_at": now} for e, o in zip(events, offsets)]
    assert [{c: v[i] for c, v in columns.items()} for i in range(len(events))] == rows


def test_columns_refuse_another_tables_events():
    with pytest.raises(TypeError):
        tables.to_columns("labels", _events()["exports"], "t", 0, [0, 1])


@pytest.mark.parametrize("table", ["labels", "accepted_examples"])
def test_write_columns_writes_the_file_write_batch_writes(table, tmp_path):
    events = _events()[table]
    now = datetime.now(UTC)
    # Two days in one batch: one file per day, under the same name.
    events = [*events, events[0].model_copy(update={"ts": T0 + timedelta(days=1), "event_id": "late"})]
    offsets = list(range(10, 10 + len(events)))
    a, b = Settings(data_dir=tmp_path / "a"), Settings(data_dir=tmp_path / "b")
    rows = [{**tables.to_row(table, e, tables.Source("t", 1, o)), "ingested_at": now} for e, o in zip(events, offsets)]
    by_rows = write_batch(a, table, rows, topic="t", partition=1, first_offset=10, last_offset=10 + len(events))
    by_columns = write_columns(b, table, tables.to_columns(table, events, "t", 1, offsets, now), topic="t",
                               partition=1, first_offset=10, last_offset=10 + len(events))
    assert len(by_rows) == 2
    assert [p.relative_to(tmp_path / "a") for p in by_rows] == [p.relative_to(tmp_path / "b") for p in by_columns]
    for x, y in zip(by_rows, by_columns):
        assert pq.read_table(x).equals(pq.read_table(y))
    assert len(data_files(b, table)) == 2


def test_write_columns_refuses_columns_that_are_not_the_tables(tmp_path):
    columns = tables.to_columns("exports", _events()["exports"], "t", 0, [0, 1])
    del columns["final_edit"]
    with pytest.raises(ValueError, match="not the table"):
        write_columns(Settings(data_dir=tmp_path), "exports", columns, topic="t", partition=0, first_offset=0,
                      last_offset=1)


def _produced_label(produced: Produced, i: int) -> tuple[LabelEvent, bytes]:
    label = _label(i)
    value = to_json_bytes(label)
    produced.remember(TOPIC_LABELS, value, label)
    return label, value


def test_an_own_record_is_taken_back_once_then_decoded_in_full():
    produced = Produced(frozenset({TOPIC_LABELS}))
    label, value = _produced_label(produced, 0)
    raw = Raw(TOPIC_LABELS, 0, 7, b"p0", bytes(value))  # a copy, as the consumer's bytes are
    first, bad = decode(raw, LabelEvent, "join.decode", produced)
    assert bad is None and first is label
    again, bad = decode(raw, LabelEvent, "join.decode", produced)  # a replay: parsed and validated
    assert bad is None and again is not label and again == label
    assert (produced.hits, produced.misses) == (1, 1)


def test_only_byte_identical_values_are_taken_back():
    produced = Produced(frozenset({TOPIC_LABELS}))
    label, value = _produced_label(produced, 0)
    # The same event spelled another way (spaces) is someone else's record: validated in full.
    respelled = json.dumps(json.loads(value), indent=1).encode()
    event, bad = decode(Raw(TOPIC_LABELS, 0, 1, None, respelled), LabelEvent, "join.decode", produced)
    assert bad is None and event is not label and event == label
    # A record that breaks the contract is dead-lettered whatever this process produced.
    broken = json.loads(value)
    broken["edit"] = {"adjust": {"temperature": 999}}
    event, bad = decode(Raw(TOPIC_LABELS, 0, 2, None, json.dumps(broken).encode()), LabelEvent, "join.decode", produced)
    assert event is None and bad.error_kind == "schema_violation"
    # Bytes remembered for one topic are not an event of another topic or of another model.
    assert decode(Raw(TOPIC_ACCEPTED, 0, 3, None, value), AcceptedExample, "sink", produced)[0] is None
    assert decode(Raw(TOPIC_LABELS, 0, 4, None, value), LabelEvent, "join.decode", produced)[0] is label


def test_size_and_emptiness_are_checked_before_own_records():
    produced = Produced(frozenset({TOPIC_LABELS}))
    label = _label(0)
    huge = b" " * (MAX_RECORD_BYTES + 1)
    produced.remember(TOPIC_LABELS, huge, label)
    event, bad = decode(Raw(TOPIC_LABELS, 0, 0, None, huge), LabelEvent, "join.decode", produced)
    assert event is None and bad.error_kind == "oversize"
    assert decode(Raw(TOPIC_LABELS, 0, 1, None, None), LabelEvent, "join.decode", produced)[1].error_kind == "empty_record"


def test_own_records_are_bounded_and_only_for_their_topics():
    produced = Produced(frozenset({TOPIC_LABELS}), limit=3)
    made = [_produced_label(produced, i) for i in range(5)]
    produced.remember(TOPIC_DLQ, b"{}", made[0][0])  # not a topic it keeps
    assert produced.take(TOPIC_DLQ, b"{}") is None
    assert [produced.take(TOPIC_LABELS, v) is e for e, v in made] == [False, False, True, True, True]


def test_join_state_bytes_are_what_the_codec_writes_and_read_back_the_same():
    from streams.join_state import _CODEC, JoinState

    labels, exports = _events()["labels"], _events()["exports"]

    def build(own_wire: bool) -> JoinState:
        state = JoinState.empty(partition=3, now=1_764_000_000.123456)
        # One label as the worker's own record (its wire bytes reused), one decoded in full.
        state.add_label(labels[0], SourceRef(topic=TOPIC_LABELS, partition=3, offset=7),
                        to_json_bytes(labels[0]) if own_wire else None)
        state.add_label(labels[1], None)
        state.add_export(exports[1], SourceRef(topic=TOPIC_EXPORTS, partition=3, offset=2))
        state.emitted.update({"e1", "e0"})
        return state

    reference = json.loads(_CODEC.dump_json(build(False), exclude_none=True))  # as the join wrote it before
    state = build(True)
    composed = state.to_bytes()
    assert json.loads(composed) == {**reference, "emitted": ["e0", "e1"]}
    assert sorted(reference["emitted"]) == ["e0", "e1"]
    assert JoinState.from_bytes(composed) == state == build(False)
    assert state.to_bytes() == composed  # entries keep their JSON; the state's bytes do not drift


def test_construct_makes_what_model_construct_makes_and_refuses_missing_fields():
    from schemas.events import construct

    label = _label(1, repairs=["clamped"], served_by=SERVED, served_edit=OTHER)
    values = {name: getattr(label, name) for name in LabelEvent.model_fields}
    fast, slow = construct(LabelEvent, **dict(reversed(values.items()))), LabelEvent.model_construct(**values)
    assert fast == slow == label
    assert to_json_bytes(fast) == to_json_bytes(slow) == to_json_bytes(label)  # field order kept
    assert fast.model_fields_set == slow.model_fields_set
    del values["cost"]
    with pytest.raises(TypeError, match="missing \\['cost'\\]"):
        construct(LabelEvent, **values)
    with pytest.raises(TypeError, match="unknown \\['bogus'\\]"):
        construct(LabelEvent, **{**values, "cost": 0.0, "bogus": 1})


def _prompt_raws(partitions: list[int], start: int = 0) -> list:
    out = []
    for i, partition in enumerate(partitions, start):
        event = PromptEvent(event_id=f"e{i}", project_id=f"p{i}", user_id="u", ts=T0, prompt=f"look {i}")
        out.append((Raw(TOPIC_PROMPTS, partition, 100 + i, f"p{i}".encode(), to_json_bytes(event)), event))
    return out


def test_a_batch_of_several_partitions_lands_as_one_file_with_each_rows_own_position(tmp_path):
    """streams/sink.py lands one file per table and batch: each row keeps its partition and offset,
    a replay of the same batch replaces the file, and one cut differently adds a file whose rows
    the view drops as duplicates (the view answers the same)."""
    import duckdb

    from streams.pipeline import Pipeline
    from streams.sink import write
    from warehouse.catalog import connect

    settings = Settings(data_dir=tmp_path)
    pipe = Pipeline(settings=settings)
    batch = _prompt_raws([0, 2, 1, 2, 0])
    bad = (Raw(TOPIC_PROMPTS, 3, 7, b"k", b"{not json"), None)  # no row, but its offset names the file
    assert write(pipe, TOPIC_PROMPTS, [*batch, bad]) == 5
    files = data_files(settings, "prompts")
    assert len(files) == 1
    rows = duckdb.sql(f"SELECT event_id, src_partition, src_offset FROM read_parquet('{files[0]}') "
                      "ORDER BY src_offset").fetchall()
    assert rows == [(e.event_id, raw.partition, raw.offset) for raw, e in batch]
    assert write(pipe, TOPIC_PROMPTS, [*batch, bad]) == 5  # a replay of the same batch: the same file
    assert data_files(settings, "prompts") == files
    assert write(pipe, TOPIC_PROMPTS, batch) == 5  # partition 3's record not in it: another cut, another file
    assert write(pipe, TOPIC_PROMPTS, batch[:2]) == 2
    assert len(data_files(settings, "prompts")) == 3
    con = connect(settings)
    assert con.execute("SELECT count(*), count(DISTINCT event_id) FROM prompts").fetchone() == (5, 5)
    assert write(pipe, TOPIC_PROMPTS, batch[:1]) == 1  # one partition: named as before this change
    assert any(p.name.startswith(f"{TOPIC_PROMPTS}-p0000-{100:019d}-{100:019d}-") for p in data_files(settings, "prompts"))
