"""The join's typed state, its changelog form, the expiry index, and one batched join step."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from foundation.settings import Settings
from schemas import validate_edit
from schemas.events import (
    TOPIC_ACCEPTED,
    TOPIC_DLQ,
    TOPIC_EXPORTS,
    TOPIC_LABELS,
    ExportEvent,
    LabelEvent,
    SourceRef,
    TeacherRef,
    to_json_bytes,
)
from streams.codec import Raw
from streams.join import SWEEP_EVERY_S, Join
from streams.join_state import ExpiryIndex, JoinState
from streams.pipeline import Pipeline

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _label(project: str, event_id: str) -> LabelEvent:
    return LabelEvent(event_id=event_id, project_id=project, user_id="u", prompt="golden hour", prompt_ts=T0,
                      teacher=TeacherRef(model="offline", version="v"),
                      edit=validate_edit({"adjust": {"temperature": 30}}), latency_ms=1.0)


def _export(project: str, event_id: str) -> ExportEvent:
    return ExportEvent(event_id=event_id, project_id=project, user_id="u", ts=T0 + timedelta(seconds=30))


def _pipe(ttl: float = 100.0) -> Pipeline:
    return Pipeline(Settings(data_dir="unused", join_ttl_s=ttl))


def test_state_round_trips_through_its_changelog_bytes():
    state = JoinState.empty(partition=3, now=123.5)
    state.add_label(_label("p1", "e1"), SourceRef(topic=TOPIC_LABELS, partition=3, offset=7))
    state.add_export(_export("p1", "x1"), None)
    state.emitted.add("e1")
    back = JoinState.from_bytes(state.to_bytes())
    assert back == state
    assert json.loads(state.to_bytes())["partition"] == 3


def test_state_written_by_an_older_worker_is_read():
    label, export = _label("p1", "e1"), _export("p1", "x1")
    legacy = {"p": 2, "t": 50.0, "emitted": ["e1"],
              "labels": {"e1": {"e": label.model_dump(mode="json"), "src": None}},
              "exports": {"x1": {"e": export.model_dump(mode="json"),
                                 "src": {"topic": TOPIC_EXPORTS, "partition": 2, "offset": 9}}}}
    state = JoinState.from_bytes(json.dumps(legacy).encode())
    assert (state.partition, state.touched, state.emitted) == (2, 50.0, {"e1"})
    assert state.labels["e1"].event == label and state.exports["x1"].src.offset == 9


def test_expiry_index_pops_only_expired_keys_oldest_first():
    index = ExpiryIndex()
    for k in range(1000):
        index.touch(0, f"k{k}", float(k))
    index.touch(0, "k0", 5000.0)  # touched again: now the newest
    index.touch(1, "other", 0.0)
    assert list(index.expired(0, older_than=3.0)) == ["k1", "k2"]
    assert list(index.expired(0, older_than=3.0)) == []  # popped, and nothing else looked at
    assert len(index) == 1001 - 2  # 1000 in partition 0, one in partition 1
    assert list(index.expired(0, older_than=1e9))[-1] == "k0"


def test_batch_writes_each_project_changelog_to_its_own_partition_once():
    store: dict = {}
    join = Join(_pipe(), store)
    raws = [Raw(TOPIC_LABELS, 1, 10, b"a", to_json_bytes(_label("a", "ea"))),
            Raw(TOPIC_LABELS, 2, 20, b"b", to_json_bytes(_label("b", "eb"))),
            Raw(TOPIC_EXPORTS, 1, 11, b"a", to_json_bytes(_export("a", "xa"))),
            Raw(TOPIC_EXPORTS, 2, 21, b"b", b"{not json")]
    outputs, writes = join.step(raws, now=1000.0)
    assert sorted((p, k) for p, k, _ in writes) == [(1, "a"), (2, "b")]  # one write per project
    assert {k: JoinState.from_bytes(v).partition for _, k, v in writes} == {"a": 1, "b": 2}
    assert [(t, k) for t, k, _ in outputs] == [(TOPIC_ACCEPTED, "a"), (TOPIC_DLQ, "b")]  # log order
    assert outputs[0][2].export_source_ref.offset == 11 and outputs[0][2].label_source_ref.offset == 10
    # A replay of the same batch changes no state and emits the same example again (sink dedups).
    again, _ = join.step(raws, now=1001.0)
    assert [a.event_id for t, _, a in again if t == TOPIC_ACCEPTED] == ["ea", "ea"]  # by the label and the export
    assert set(store) == {"a", "b"}


def test_sweep_expires_only_old_projects_and_dead_letters_unmatched_exports():
    store: dict = {}
    join = Join(_pipe(ttl=100.0), store)
    join.step([Raw(TOPIC_EXPORTS, 0, 1, b"lonely", to_json_bytes(_export("lonely", "x1")))], now=0.0)
    join.step([Raw(TOPIC_EXPORTS, 0, 2, b"fresh", to_json_bytes(_export("fresh", "x2")))], now=10.0)
    assert SWEEP_EVERY_S < 105.0
    outputs, writes = join.step([Raw(TOPIC_LABELS, 0, 3, b"c", to_json_bytes(_label("c", "e3")))], now=105.0)
    dlq = [r for t, _, r in outputs if t == TOPIC_DLQ]
    assert [(r.error_kind, r.event_id, r.source.offset) for r in dlq] == [("unmatched_export", "x1", 1)]
    assert (0, "lonely", None) in writes  # a tombstone in the changelog
    assert set(store) == {"fresh", "c"}


def test_recovered_bytes_are_decoded_and_indexed_on_rebalance():
    old = JoinState.empty(partition=0, now=0.0)
    old.add_export(_export("old", "x1"), None)
    store: dict = {"old": old.to_bytes()}  # as Faust's recovery leaves it
    join = Join(_pipe(ttl=100.0), store)
    join.reindex(generation=1)
    assert isinstance(store["old"], JoinState) and len(join.index) == 1
    join.step([Raw(TOPIC_LABELS, 0, 5, b"n", to_json_bytes(_label("n", "e5")))], now=500.0)
    outputs, _ = join.step([Raw(TOPIC_LABELS, 0, 6, b"n", to_json_bytes(_label("n", "e6")))],
                           now=500.0 + SWEEP_EVERY_S)
    assert "old" not in store and [r.event_id for t, _, r in outputs if t == TOPIC_DLQ] == ["x1"]


def test_source_json_is_pydantics_bytes():
    """The changelog entry's ``src`` is written directly (``join_state.source_json``); it must stay
    the bytes pydantic gives, which ``from_bytes`` and older workers read."""
    from hypothesis import HealthCheck, given, settings

    from streams.join_state import source_json
    from tests.contract_strategies import valid_bytes

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(valid_bytes(SourceRef))
    def check(raw: bytes) -> None:
        src = SourceRef.model_validate_json(raw)
        assert source_json(src) == to_json_bytes(src)

    check()
    odd = SourceRef(topic='a "quoted"\ttopic \u00e9\x7f', partition=3, offset=2**62)
    assert source_json(odd) == to_json_bytes(odd)
    built = SourceRef.model_construct(topic="t", partition=True, offset=1)  # not an int: pydantic writes it
    assert source_json(built) == to_json_bytes(built)


def test_changelog_key_is_json_dumps():
    from streams.changelog import key_bytes

    for key in ("p-1", 'a "quoted" key', "caf\u00e9 \U0001f600", "tab\there\x00"):
        assert key_bytes(key) == json.dumps(key).encode() and json.loads(key_bytes(key)) == key
