"""Pure parts of the stream pipeline: decoding, the join rule, the feedback-loop guard."""

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from schemas import validate_edit
from schemas.events import ExportEvent, LabelEvent, PromptEvent, ServedBy, TeacherRef
from schemas.trust import sign_served
from streams.codec import Raw, decode
from streams.guard import cap_student_share, needs_teacher_call
from streams.join import matches
from streams.join_state import JoinState
from streams.malformed import KINDS, malformed_records

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _raw(value, topic="toneflow.prompts"):
    return Raw(topic, 2, 41, b"p1", value)


def test_good_prompt_decodes():
    good = {"schema_version": 1, "event_id": "e1", "project_id": "p1", "user_id": "u", "ts": T0.isoformat(),
            "prompt": "golden hour"}
    event, bad = decode(_raw(json.dumps(good).encode()), PromptEvent, "test")
    assert bad is None and event.prompt == "golden hour"


def test_every_malformed_kind_becomes_a_dlq_record_with_its_offset():
    kinds = set()
    for topic, _key, value in malformed_records(KINDS, random.Random(0)):
        model = PromptEvent if topic == "toneflow.prompts" else ExportEvent
        event, bad = decode(_raw(value, topic), model, "test.decode")
        assert event is None and bad is not None
        assert (bad.source.topic, bad.source.partition, bad.source.offset) == (topic, 2, 41)
        assert bad.stage == "test.decode" and bad.error
        kinds.add(bad.error_kind)
    assert kinds == {"not_json", "not_utf8", "schema_violation", "unknown_schema_version", "oversize"}


def test_empty_value_is_dead_lettered():
    assert decode(_raw(None), PromptEvent, "t")[1].error_kind == "empty_record"


def _label(event_id="e1", ts=T0, served=None):
    return LabelEvent(event_id=event_id, project_id="p1", user_id="u", prompt="golden hour", prompt_ts=ts,
                      teacher=TeacherRef(model="offline", version="v"), edit=validate_edit({"adjust": {"temperature": 30}}),
                      latency_ms=1.0, served_by=served)


def _state(labels=(), exports=(), emitted=()):
    state = JoinState.empty(partition=0, now=0.0)
    for label in labels:
        state.add_label(label, None)
    for export in exports:
        state.add_export(export, None)
    state.emitted.update(emitted)
    return state


def test_join_accepts_with_export_after_prompt_and_prefers_final_edit():
    export = ExportEvent(event_id="x1", project_id="p1", user_id="u", ts=T0 + timedelta(seconds=30))
    [acc] = matches(_state([_label()], [export]), "e1", is_label=True)  # the label arrives last
    assert acc.event_id == "e1" and acc.label_source == "teacher" and acc.edit == acc.teacher_edit
    assert acc.look_slice == "adjust" and acc.quality == 1.0
    [again] = matches(_state([_label()], [export]), "x1", is_label=False)  # or the export arrives last
    assert again.model_dump(exclude={"ts"}) == acc.model_dump(exclude={"ts"})

    tweaked = ExportEvent(event_id="x2", project_id="p1", user_id="u", ts=T0 + timedelta(seconds=5),
                          final_edit=validate_edit({"filter": {"name": "mono_Noir", "intensity": 70}}))
    state = _state([_label()], [export, tweaked])
    [acc] = matches(state, "e1", is_label=True)  # the earliest export at/after the prompt wins
    assert acc.label_source == "user_corrected" and acc.edit.filter.name == "mono_Noir"
    assert acc.export_event_id == "x2" and acc.look_slice == "mono_Noir"
    assert matches(state, "x1", is_label=False) == []  # x1 is not the label's earliest export
    assert [a.export_event_id for a in matches(state, "x2", is_label=False)] == ["x2"]


def test_join_ignores_exports_before_the_prompt_and_other_labels():
    early = ExportEvent(event_id="x0", project_id="p1", user_id="u", ts=T0 - timedelta(seconds=1))
    assert matches(_state([_label()], [early]), "e1", is_label=True) == []
    assert matches(_state([_label()], [early]), "x0", is_label=False) == []
    late = ExportEvent(event_id="x1", project_id="p1", user_id="u", ts=T0 + timedelta(hours=3))
    two = _state([_label("e1"), _label("e2")], [late])
    assert [a.event_id for a in matches(two, "e2", is_label=True)] == ["e2"]  # only the arriving label
    assert sorted(a.event_id for a in matches(two, "x1", is_label=False)) == ["e1", "e2"]
    assert matches(_state([], [late]), "x1", is_label=False) == []
    # A replay of the same label emits the same example again (the sink de-duplicates it).
    assert matches(_state([_label()], [late], emitted=["e1"]), "e1", is_label=True)


def test_guard_reuses_teacher_served_and_relabels_student_served():
    base = {"event_id": "e", "project_id": "p", "user_id": "u", "ts": T0, "prompt": "moody",
            "served_edit": validate_edit({"adjust": {"contrast": 20}})}
    key = b"k" * 32
    by_teacher = ServedBy(kind="teacher", model="openai", version="gpt", variant="A")
    teacher = PromptEvent(**base, served_by=by_teacher,
                          served_sig=sign_served(key, base["prompt"], by_teacher, base["served_edit"]))
    student = PromptEvent(**base, served_by=ServedBy(kind="student", model="minilm", version="v3", variant="B"))
    assert not needs_teacher_call(teacher, key)
    assert needs_teacher_call(student, key)
    assert needs_teacher_call(PromptEvent(**{**base, "served_edit": None}), key)
    assert needs_teacher_call(teacher.model_copy(update={"served_sig": None}), key)  # unsigned: not vouched for


@pytest.mark.parametrize("cap", [0.0, 0.2, 0.5, 1.0])
def test_student_share_cap(cap):
    rows = list(range(100))
    is_student = [r % 2 == 0 for r in rows]  # 50 student rows, 50 teacher rows
    kept = cap_student_share(rows, is_student, cap, seed=1)
    students = sum(1 for r in kept if r % 2 == 0)
    assert sum(1 for r in kept if r % 2) == 50  # teacher rows are never dropped
    assert students / len(kept) <= cap + 1e-9
    assert students == min(50, int(cap * 50 / (1 - cap))) if cap < 1 else students == 50
    assert kept == sorted(kept)  # order preserved


def test_offsets_never_commit_past_a_record_not_done():
    from streams.batch_stage import Offsets
    from streams.codec import Raw

    offsets = Offsets()
    raws = [Raw("t", 0, o, None, b"") for o in range(10, 15)] + [Raw("t", 1, 3, None, b"")]
    offsets.track(raws)
    assert offsets.committable() == {}  # nothing done yet
    offsets.done([raws[0], raws[2], raws[5]])  # 10 and 12 of partition 0 (out of order), 3 of partition 1
    first = offsets.committable()
    assert first == {("t", 0): 11, ("t", 1): 4}  # 11 is still in flight: 12 waits
    assert offsets.committable() == first  # the broker has not accepted them yet (a failed commit): offered again
    offsets.committed({("t", 1): 4})  # partition 0's commit failed, partition 1's went through
    assert offsets.committable() == {("t", 0): 11}
    offsets.committed({("t", 0): 11})
    assert offsets.committable() == {}  # nothing moved since the broker accepted it
    offsets.done(raws[1:5])
    assert offsets.committable() == {("t", 0): 15}
    offsets.forget([("t", 0)])  # revoked: late marks for it are ignored, nothing to commit
    offsets.committed({("t", 0): 15})  # a confirmation after the revoke does not bring it back
    offsets.done(raws[:1])
    assert offsets.committable() == {} and offsets.in_flight() == 0
