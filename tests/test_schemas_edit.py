import json

import pytest

from schemas import (
    ADJUST_PARAMS,
    FILTER_NAMES,
    Edit,
    RepairFailed,
    SchemaViolation,
    adjust_vector,
    canonical_json,
    repair_edit,
    selective_vector,
    validate_edit,
)

DESIGN_EXAMPLE = {
    "adjust": {"exposure": 0, "contrast": 10, "brightness": 10, "highlights": 20, "shadows": -10,
               "saturation": 15, "vibrance": 15, "temperature": 30, "tint": 10, "hue": 0,
               "bloom": 0, "sharpen": 0, "structure": 0, "linearOffset": 0},
    "selective_adjust": {"red": {"saturation": 20, "luminance": 10},
                         "orange": {"saturation": 30, "luminance": 20}},
    "filter": {"name": "faded_HighNoon", "intensity": 40},
}


def test_design_example_is_valid():
    edit = validate_edit(DESIGN_EXAMPLE)
    assert edit.adjust.temperature == 30
    assert edit.selective_adjust.orange.luminance == 20
    assert edit.filter.name == "faded_HighNoon"


def test_contract_sizes():
    assert len(ADJUST_PARAMS) == 14
    assert len(FILTER_NAMES) >= 24 and len(set(FILTER_NAMES)) == len(FILTER_NAMES)
    assert validate_edit({}).is_empty


@pytest.mark.parametrize(
    ("bad", "path", "value"),
    [
        ({"adjust": {"contrast": 250}}, "adjust.contrast", 250),
        ({"adjust": {"warmth": 10}}, "adjust.warmth", 10),
        ({"adjust": {"exposure": 1.5}}, "adjust.exposure", 1.5),
        ({"selective_adjust": {"teal": {"hue": 5}}}, "selective_adjust.teal", {"hue": 5}),
        ({"selective_adjust": {"blue": {"saturation": -101}}}, "selective_adjust.blue.saturation", -101),
        ({"filter": {"name": "instagram_Valencia", "intensity": 50}}, "filter.name", "instagram_Valencia"),
        ({"filter": {"name": "mono_Noir", "intensity": 120}}, "filter.intensity", 120),
        ({"crop": {"x": 1}}, "crop", {"x": 1}),
        ({"adjust": {"contrast": True}}, "adjust.contrast", True),
    ],
)
def test_validate_names_path_and_value(bad, path, value):
    with pytest.raises(SchemaViolation) as info:
        validate_edit(bad)
    assert info.value.path == path
    assert info.value.value == value
    assert path in str(info.value) and repr(value)[:20] in str(info.value)


def test_canonical_form_drops_zeros_and_idle_tools():
    edit = validate_edit({"adjust": {"exposure": 0, "contrast": 5}, "selective_adjust": {"red": {"hue": 0}},
                          "filter": {"name": "mono_Noir", "intensity": 0}})
    assert canonical_json(edit) == '{"adjust":{"contrast":5}}'
    assert edit.tools_used() == ("adjust",)
    # Key order follows the contract, not the input.
    a = validate_edit({"adjust": {"tint": 1, "exposure": 2}})
    b = validate_edit({"adjust": {"exposure": 2, "tint": 1}})
    assert canonical_json(a) == canonical_json(b) == '{"adjust":{"exposure":2,"tint":1}}'


def test_vectors_have_fixed_order_and_zero_for_absent():
    edit = validate_edit(DESIGN_EXAMPLE)
    assert adjust_vector(edit)[1] == 10 and len(adjust_vector(edit)) == 14
    assert adjust_vector(Edit()) == [0] * 14
    sel = selective_vector(edit)
    assert len(sel) == 24 and sel[:3] == [0, 20, 10] and sel[3:6] == [0, 30, 20] and sum(sel[6:]) == 0


def test_repair_clamps_rounds_drops_and_counts():
    raw = ('Sure! Here is the edit:\n```json\n{"adjust": {"contrast": 250, "exposure": 12.6, "warmth": "20", '
           '"magic": 3}, "selective_adjust": {"teal": {"hue": 4}, "Blue": {"saturation": -130}}, '
           '"filter": {"name": "warm goldenhour"}, "crop": {}}\n```')
    result = repair_edit(raw)
    assert canonical_json(result.edit) == json.dumps(
        {"adjust": {"exposure": 13, "contrast": 100, "temperature": 20},
         "selective_adjust": {"blue": {"saturation": -100}},
         "filter": {"name": "warm_GoldenHour", "intensity": 100}}, separators=(",", ":"))
    counts = result.counts()
    assert counts["extracted_json"] == 1
    assert counts["clamped"] == 2
    assert counts["rounded"] == 1
    assert counts["renamed_filter"] == 1
    assert counts["defaulted_intensity"] == 1
    assert counts["dropped_key"] == 3  # magic, teal, crop
    assert counts["parsed_number"] == 1


def test_repair_drops_unknown_filter_and_keeps_valid_input_untouched():
    result = repair_edit({"filter": {"name": "instagram_Valencia", "intensity": 40}, "adjust": {"hue": 5}})
    assert result.edit.filter is None and result.counts() == {"unknown_filter": 1}
    clean = repair_edit(DESIGN_EXAMPLE)
    assert clean.repairs == [] and clean.edit == validate_edit(DESIGN_EXAMPLE)


@pytest.mark.parametrize("garbage", ["the sky is blue", "[1, 2, 3]", "{not json"])
def test_repair_fails_clearly_on_non_objects(garbage):
    with pytest.raises(RepairFailed):
        repair_edit(garbage)


def test_canonical_texts_are_the_encoders_json_of_the_canonical_dict():
    """``schemas.edit`` writes the two canonical JSON texts itself (the signature check makes both
    for every prompt): they must stay the bytes the JSON encoders give, or served signatures and
    stored edits change."""
    from hypothesis import HealthCheck, given, settings

    from schemas.edit import COMPACT_JSON, SORTED_COMPACT_JSON, _canonical_texts, canonical_dict
    from tests.contract_strategies import valid_bytes

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(valid_bytes(Edit))
    def check(raw: bytes) -> None:
        canon = canonical_dict(Edit.model_validate_json(raw))
        assert _canonical_texts(canon) == (COMPACT_JSON.encode(canon), SORTED_COMPACT_JSON.encode(canon))

    check()
    every_tool = canonical_dict(validate_edit(DESIGN_EXAMPLE))
    assert _canonical_texts(every_tool) == (COMPACT_JSON.encode(every_tool), SORTED_COMPACT_JSON.encode(every_tool))
    odd = {"adjust": {"contrast": True}, "filter": {"name": "not \"in\" the catalogue", "intensity": 5}}
    assert _canonical_texts(odd) == (COMPACT_JSON.encode(odd), SORTED_COMPACT_JSON.encode(odd))
