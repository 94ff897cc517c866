"""The generated JSON Schemas are what app producers in other languages validate against."""

import json

import jsonschema
import pytest

from schemas.jsonschema import JSON_DIR, drifted, render_all
from tests.test_schemas_edit import DESIGN_EXAMPLE
from tests.test_schemas_events import GOOD_EXPORT, GOOD_PROMPT


def _validator(name):
    schema = json.loads((JSON_DIR / f"{name}.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def test_committed_schemas_match_the_models():
    assert set(render_all()) == {p.name for p in JSON_DIR.glob("*.schema.json")}
    assert drifted() == [], "run `toneflow schemas generate` and commit schemas/json/"


def test_design_examples_pass():
    _validator("edit").validate(DESIGN_EXAMPLE)
    _validator("prompt").validate(GOOD_PROMPT)
    _validator("export").validate(GOOD_EXPORT)


@pytest.mark.parametrize(
    "bad",
    [
        {"adjust": {"contrast": 250}},
        {"adjust": {"warmth": 10}},
        {"adjust": {"exposure": 1.5}},
        {"selective_adjust": {"teal": {"hue": 5}}},
        {"filter": {"name": "instagram_Valencia", "intensity": 50}},
        {"filter": {"name": "mono_Noir", "intensity": -1}},
        {"crop": {}},
    ],
)
def test_malformed_edits_are_rejected(bad):
    assert list(_validator("edit").iter_errors(bad))


@pytest.mark.parametrize("change", [{"schema_version": 2}, {"prompt": ""}, {"extra": 1}, {"event_id": None}])
def test_malformed_prompts_are_rejected(change):
    assert list(_validator("prompt").iter_errors({**GOOD_PROMPT, **change}))
