"""The duplicate rule (warehouse/views.py), on real Parquet files and DuckDB.

Identity is (project_id, event_id); the first record on the log wins; a later prompt or export with
the same identity and different content is listed in ``conflicting_duplicates``, and labels and
accepted examples derived from it are not shown, so the prompts, labels and accepted views agree.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from foundation.settings import Settings
from schemas import validate_edit
from schemas.edit import look_slice
from schemas.events import (
    TOPIC_ACCEPTED,
    TOPIC_EXPORTS,
    TOPIC_LABELS,
    TOPIC_PROMPTS,
    AcceptedExample,
    ExportEvent,
    LabelEvent,
    PromptEvent,
    SourceRef,
    TeacherRef,
)
from warehouse import tables
from warehouse.catalog import connect
from warehouse.maintenance import compact
from warehouse.writer import write_batch

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
TABLE_OF = {TOPIC_PROMPTS: "prompts", TOPIC_EXPORTS: "exports", TOPIC_LABELS: "labels",
            TOPIC_ACCEPTED: "accepted_examples"}


@pytest.fixture
def wh(tmp_path):
    return Settings(data_dir=tmp_path / "data")


def prompt(event_id: str, project: str, text: str, minute: int = 0) -> PromptEvent:
    return PromptEvent(event_id=event_id, project_id=project, user_id="u", ts=T0 + timedelta(minutes=minute),
                       prompt=text)


def label(p: PromptEvent, src: SourceRef, temperature: int = 30) -> LabelEvent:
    return LabelEvent(event_id=p.event_id, project_id=p.project_id, user_id=p.user_id, prompt=p.prompt,
                      prompt_ts=p.ts, teacher=TeacherRef(model="offline", version="v"), latency_ms=1.0,
                      edit=validate_edit({"adjust": {"temperature": temperature}}), source=src, ts=T0)


def export(event_id: str, project: str, minute: int = 30) -> ExportEvent:
    return ExportEvent(event_id=event_id, project_id=project, user_id="u", ts=T0 + timedelta(minutes=minute))


def accepted(lab: LabelEvent, x: ExportEvent, label_src: SourceRef) -> AcceptedExample:
    return AcceptedExample(event_id=lab.event_id, project_id=lab.project_id, user_id=lab.user_id, prompt=lab.prompt,
                           edit=lab.edit, label_source="teacher", teacher_edit=lab.edit, teacher=lab.teacher,
                           look_slice=look_slice(lab.edit), export_event_id=x.event_id, prompt_ts=lab.prompt_ts,
                           export_ts=x.ts, label_source_ref=label_src, ts=T0)


def write(wh: Settings, topic: str, offset: int, event, partition: int = 0) -> None:
    table = TABLE_OF[topic]
    row = tables.to_row(table, event, tables.Source(topic, partition, offset))
    write_batch(wh, table, [row], topic=topic, partition=partition, first_offset=offset, last_offset=offset)


def ref(topic: str, offset: int) -> SourceRef:
    return SourceRef(topic=topic, partition=0, offset=offset)


def views(wh: Settings) -> dict[str, list[tuple]]:
    con = connect(wh)
    return {
        "prompts": con.execute("SELECT project_id, event_id, prompt, src_offset FROM prompts ORDER BY ALL").fetchall(),
        "labels": con.execute("SELECT project_id, event_id, prompt, prompt_src_offset FROM labels ORDER BY ALL").fetchall(),
        "accepted": con.execute("SELECT project_id, event_id, prompt, export_event_id FROM accepted_examples "
                                "ORDER BY ALL").fetchall(),
        "exports": con.execute("SELECT project_id, event_id, ts, src_offset FROM exports ORDER BY ALL").fetchall(),
        "conflicts": con.execute("SELECT table_name, project_id, event_id, src_offset, kept_offset, error_kind "
                                 "FROM conflicting_duplicates").fetchall(),
    }


def test_two_projects_sharing_an_event_id_both_count(wh):
    a, b = prompt("e1", "pA", "warm"), prompt("e1", "pB", "cold")
    for offset, p in enumerate((a, b)):
        write(wh, TOPIC_PROMPTS, offset, p)
        lab = label(p, ref(TOPIC_PROMPTS, offset))
        write(wh, TOPIC_LABELS, offset, lab)
        x = export("x1", p.project_id)
        write(wh, TOPIC_EXPORTS, offset, x)
        write(wh, TOPIC_ACCEPTED, offset, accepted(lab, x, ref(TOPIC_LABELS, offset)))
    got = views(wh)
    assert [r[:3] for r in got["prompts"]] == [("pA", "e1", "warm"), ("pB", "e1", "cold")]
    assert [r[:3] for r in got["labels"]] == [("pA", "e1", "warm"), ("pB", "e1", "cold")]
    assert got["accepted"] == [("pA", "e1", "warm", "x1"), ("pB", "e1", "cold", "x1")]
    assert len(got["exports"]) == 2 and got["conflicts"] == []


def _conflicting_story():
    """Prompt e1 of project p sent twice with different text; the later one was labelled and joined first."""
    first, later = prompt("e1", "p", "golden hour"), prompt("e1", "p", "noir", minute=1)
    lab_later, lab_first = label(later, ref(TOPIC_PROMPTS, 8), 5), label(first, ref(TOPIC_PROMPTS, 3), 40)
    x = export("x1", "p")
    return [(TOPIC_PROMPTS, 8, later), (TOPIC_PROMPTS, 3, first),
            (TOPIC_LABELS, 0, lab_later), (TOPIC_LABELS, 1, lab_first),
            (TOPIC_EXPORTS, 0, x),
            (TOPIC_ACCEPTED, 0, accepted(lab_later, x, ref(TOPIC_LABELS, 0))),
            (TOPIC_ACCEPTED, 1, accepted(lab_first, x, ref(TOPIC_LABELS, 1)))]


EXPECTED = {
    "prompts": [("p", "e1", "golden hour", 3)],
    "labels": [("p", "e1", "golden hour", 3)],
    "accepted": [("p", "e1", "golden hour", "x1")],
    "conflicts": [("prompts", "p", "e1", 8, 3, "conflicting_duplicate")],
}


def test_the_first_on_the_log_wins_in_every_view_whatever_the_write_order(wh, tmp_path):
    story = _conflicting_story()
    for n, order in enumerate(itertools.permutations(range(len(story)))):
        if n % 251:  # a spread of the 5040 orders keeps the test quick
            continue
        here = Settings(data_dir=tmp_path / f"order{n}")
        for i in order:
            write(here, *story[i])
        got = views(here)
        assert {k: got[k] for k in EXPECTED} == EXPECTED, order


def test_derived_rows_of_the_losing_prompt_are_hidden_even_when_alone(wh):
    """The later prompt's label/accepted rows are not shown even if the winner's were never written."""
    story = [s for s in _conflicting_story() if s[:2] not in ((TOPIC_LABELS, 1), (TOPIC_ACCEPTED, 1))]
    for item in story:
        write(wh, *item)
    got = views(wh)
    assert got["prompts"] == EXPECTED["prompts"] and got["labels"] == [] and got["accepted"] == []
    assert got["conflicts"] == EXPECTED["conflicts"]


def test_an_identical_resend_is_a_plain_duplicate(wh):
    p = prompt("e1", "p", "golden hour")
    write(wh, TOPIC_PROMPTS, 3, p)
    write(wh, TOPIC_PROMPTS, 9, p)  # a producer retry: same content, new offset
    lab = label(p, ref(TOPIC_PROMPTS, 9))  # labelled from the retry's copy
    write(wh, TOPIC_LABELS, 0, lab)
    x = export("x1", "p")
    write(wh, TOPIC_EXPORTS, 0, x)
    write(wh, TOPIC_ACCEPTED, 0, accepted(lab, x, ref(TOPIC_LABELS, 0)))
    got = views(wh)
    assert got["prompts"] == [("p", "e1", "golden hour", 3)] and got["conflicts"] == []
    assert got["labels"] == [("p", "e1", "golden hour", 9)] and len(got["accepted"]) == 1


def test_a_conflicting_export_is_listed_and_its_accepted_row_hidden(wh):
    p = prompt("e1", "p", "warm")
    write(wh, TOPIC_PROMPTS, 0, p)
    lab = label(p, ref(TOPIC_PROMPTS, 0))
    write(wh, TOPIC_LABELS, 0, lab)
    x_first, x_later = export("x1", "p", 30), export("x1", "p", 45)
    write(wh, TOPIC_EXPORTS, 4, x_first)
    write(wh, TOPIC_EXPORTS, 6, x_later)
    write(wh, TOPIC_ACCEPTED, 0, accepted(lab, x_later, ref(TOPIC_LABELS, 0)))
    got = views(wh)
    assert got["exports"] == [("p", "x1", x_first.ts, 4)]
    assert got["conflicts"] == [("exports", "p", "x1", 6, 4, "conflicting_duplicate")]
    assert got["accepted"] == []
    write(wh, TOPIC_ACCEPTED, 1, accepted(lab, x_first, ref(TOPIC_LABELS, 0)))
    assert views(wh)["accepted"] == [("p", "e1", "warm", "x1")]


def test_compaction_keeps_the_conflicting_record(wh):
    for item in _conflicting_story():
        write(wh, *item)
    write(wh, *_conflicting_story()[0])  # a replay of offset 8: the same file name, replaced
    compact(wh, min_files=1)
    got = views(wh)
    assert {k: got[k] for k in EXPECTED} == EXPECTED
    con = connect(wh)
    assert con.execute("SELECT count(*) FROM read_parquet(?)", [str(wh.data_path / "warehouse/prompts/*/*.parquet")]
                       ).fetchall() == [(2,)]


def test_the_trainer_tells_two_projects_same_event_id_apart(tmp_path):
    """The student-share cap counts (project_id, event_id): a teacher-served e1 is not taken for a student-served one."""
    from schemas.events import ServedBy
    from trainer.sources import from_warehouse

    wh = Settings(data_dir=tmp_path / "data", student_share_cap=0.0)  # no student-served row may stay
    for offset, (project, kind) in enumerate((("pA", "teacher"), ("pB", "student"))):
        p = prompt("e1", project, "warm")
        lab = label(p, ref(TOPIC_PROMPTS, offset)).model_copy(
            update={"served_by": ServedBy(kind=kind, model="m", version="v", variant=kind)})
        acc = accepted(lab, export("x1", project), ref(TOPIC_LABELS, offset)).model_copy(
            update={"served_by": lab.served_by})
        write(wh, TOPIC_ACCEPTED, offset, acc)
    cands, _ = from_warehouse(wh)
    assert [(c.project_id, c.event_id) for c in cands] == [("pA", "e1")]
