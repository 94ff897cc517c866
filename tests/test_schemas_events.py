from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from schemas import SchemaViolation, validate_event
from schemas.events import PromptEvent, ServedBy, to_json_bytes

GOOD_PROMPT = {
    "schema_version": 1, "event_id": "e1", "project_id": "p1", "user_id": "u1",
    "ts": "2026-11-25T10:00:00Z", "prompt": "golden hour",
    "served_by": {"kind": "teacher", "model": "openai", "version": "gpt-4o-mini", "variant": "control"},
    "served_edit": {"adjust": {"temperature": 40}},
}
GOOD_EXPORT = {"schema_version": 1, "event_id": "x1", "project_id": "p1", "user_id": "u1",
               "ts": "2026-11-25T10:05:00+00:00"}


def test_good_events_validate_and_round_trip():
    prompt = validate_event("prompt", GOOD_PROMPT)
    assert prompt.served_edit.adjust.temperature == 40
    again = validate_event("prompt", to_json_bytes(prompt))
    assert again == prompt
    assert validate_event("toneflow.exports", GOOD_EXPORT).final_edit is None


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"schema_version": 99}, "schema_version"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 501}, "prompt"),
        ({"ts": "2026-11-25T10:00:00"}, "ts"),  # naive timestamps are ambiguous
        ({"served_edit": {"adjust": {"contrast": 300}}}, "served_edit.adjust.contrast"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_prompt_events_name_the_field(change, path):
    with pytest.raises(SchemaViolation) as info:
        validate_event("prompt", {**GOOD_PROMPT, **change})
    assert info.value.path == path


def test_missing_field_is_named():
    record = dict(GOOD_EXPORT)
    del record["event_id"]
    with pytest.raises(SchemaViolation) as info:
        validate_event("export", record)
    assert info.value.path == "event_id"


def test_unknown_kind_is_an_error():
    with pytest.raises(SchemaViolation, match="unknown event kind"):
        validate_event("click", {})


def test_wire_form_is_compact_json():
    event = PromptEvent(event_id="e", project_id="p", user_id="u", ts=datetime(2026, 1, 1, tzinfo=UTC),
                        prompt="moody")
    assert b"served_by" not in to_json_bytes(event)


def test_served_by_written_before_kind_existed_is_still_read():
    """Records on the log from before ``kind``: ``model`` said "teacher/<name>" or "student/<name>"."""
    old = ServedBy.model_validate({"model": "student/minilm", "version": "v3", "variant": "B"})
    assert (old.kind, old.model, old.by_teacher) == ("student", "minilm", False)
    with pytest.raises(ValidationError):
        ServedBy.model_validate({"model": "minilm", "version": "v3", "variant": "B"})  # no kind: not guessed
