"""Explicit adjustment language: the table's grammar, and the offline teacher's edits rendered on a real photo.

Every request here was written for this file; none comes from the shared real-request set. Each
class of failure the look library alone had (direction words, negation and complaints, amounts,
several clauses, a look plus a clause, a partly unsupported request, named colours) has its own
test, and the rendered tests check that the photo moves the asked way by a visible amount.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from editor import stats
from editor.render import Renderer
from editor.samples import sample_photo
from teacher import adjustments
from teacher.adjustments import read
from teacher.offline import OfflineTeacher
from teacher.prompting import EXAMPLES, system_prompt

# The statistics and visible-change thresholds are the real-request benchmark's (editor/stats.py).
THRESHOLD = stats.NOTICEABLE
_GLOBAL = ("luma", "chroma", "warmth", "contrast")


def image_stats(img: np.ndarray) -> dict[str, float]:
    return {name: float(stats.GLOBAL_STATS[name](img)) for name in _GLOBAL}


def change(before: dict[str, float], after: dict[str, float], stat: str) -> float:
    return float(stats.change(before[stat], after[stat], stat))


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> OfflineTeacher:
    t = OfflineTeacher(cache_dir=tmp_path_factory.mktemp("cache"))
    t.warm()
    return t


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    # Quarter size: the statistics are means, so this keeps them and renders 16x faster.
    return [np.ascontiguousarray(sample_photo(name)[::4, ::4]) for name in ("astronaut", "coffee")]


def moved(teacher: OfflineTeacher, photos: list[np.ndarray], prompt: str, stat: str) -> float:
    """Mean change of ``stat`` over the photos when the teacher's edit for ``prompt`` is rendered."""
    [label] = teacher.label_sync([prompt])
    assert label.ok
    renderer = Renderer(label.edit)
    return float(np.mean([change(image_stats(p), image_stats(renderer(p)), stat) for p in photos]))


def assert_moves(teacher: OfflineTeacher, photos: list[np.ndarray], prompt: str, stat: str, way: str) -> None:
    delta = moved(teacher, photos, prompt, stat)
    want = THRESHOLD[stat]
    assert (delta >= want) if way == "up" else (delta <= -want), (prompt, stat, way, round(delta, 4))


def _value(edit: dict, key: str) -> int:
    if "." in key:
        colour, channel = key.split(".")
        return edit.get("selective_adjust", {}).get(colour, {}).get(channel, 0)
    return edit.get("adjust", {}).get(key, 0)


def signs(text: str) -> dict[str, int]:
    return {a.attribute: a.sign for a in read(text).adjustments}


DIRECTION = [
    ("raise the brightness", "luma", "up"),
    ("lower the brightness", "luma", "down"),
    ("darken the picture", "luma", "down"),
    ("turn the saturation down", "chroma", "down"),
    ("give the colours a boost", "chroma", "up"),
    ("boost the contrast", "contrast", "up"),
    ("decrease the contrast", "contrast", "down"),
    ("make it cooler", "warmth", "down"),
    ("warm the picture up", "warmth", "up"),
    ("bring the exposure down", "luma", "down"),
]
NEGATION = [
    ("brighten it so it is not so dark", "luma", "up"),
    ("the colours are not vivid enough", "chroma", "up"),
    ("it's too bright", "luma", "down"),
    ("way too saturated", "chroma", "down"),
    ("the photo looks washed out", "contrast", "up"),
    ("much too cold", "warmth", "up"),
    ("the picture is overexposed", "luma", "down"),
    ("this image is dark", "luma", "up"),
    # a cue in front of a complaint word scales the state it names: less flat = more contrast
    ("make it less flat", "contrast", "up"),
    ("make it less dull", "chroma", "up"),
    ("make it more washed out", "contrast", "down"),
    ("make it less overexposed", "luma", "down"),
]
AMOUNT = [
    ("brighten it very slightly", "luma", "up"),
    ("a tiny bit less contrast", "contrast", "down"),
    ("make it a touch warmer", "warmth", "up"),
    ("lower the saturation by 10%", "chroma", "down"),
]
TWO_CLAUSES = [
    ("brighten the photo and add contrast", (("luma", "up"), ("contrast", "up"))),
    ("lower the contrast, then make it warmer", (("contrast", "down"), ("warmth", "up"))),
    ("raise contrast and saturation", (("contrast", "up"), ("chroma", "up"))),
    ("cooler please; and less contrast", (("warmth", "down"), ("contrast", "down"))),
]


@pytest.mark.parametrize(("prompt", "stat", "way"), DIRECTION, ids=[c[0] for c in DIRECTION])
def test_direction_words_render_the_asked_way(teacher, photos, prompt, stat, way) -> None:
    assert_moves(teacher, photos, prompt, stat, way)


@pytest.mark.parametrize(("prompt", "stat", "way"), NEGATION, ids=[c[0] for c in NEGATION])
def test_negation_too_and_complaints_flip_the_direction(teacher, photos, prompt, stat, way) -> None:
    assert_moves(teacher, photos, prompt, stat, way)


@pytest.mark.parametrize(("prompt", "stat", "way"), AMOUNT, ids=[c[0] for c in AMOUNT])
def test_small_amounts_are_still_visible(teacher, photos, prompt, stat, way) -> None:
    assert_moves(teacher, photos, prompt, stat, way)


@pytest.mark.parametrize(("prompt", "wants"), TWO_CLAUSES, ids=[c[0] for c in TWO_CLAUSES])
def test_two_clauses_both_render(teacher, photos, prompt, wants) -> None:
    for stat, way in wants:
        assert_moves(teacher, photos, prompt, stat, way)


def test_amounts_order_the_edit(teacher) -> None:
    prompts = ["increase the brightness a tiny bit", "increase the brightness slightly", "increase the brightness",
               "increase the brightness a lot", "brightness +10%", "brightness +50%", "saturation -40"]
    edits = [lab.edit.canonical_dict() for lab in teacher.label_sync(prompts)]
    b = [_value(e, "brightness") for e in edits]
    assert 0 < b[0] < b[1] < b[2] < b[3]
    assert 0 < b[4] < b[5]
    assert _value(edits[6], "saturation") < 0


def test_three_clauses_and_a_shared_verb() -> None:
    assert signs("more contrast, less saturation and a bit warmer") == {"contrast": 1, "saturation": -1, "warmth": 1}
    reading = read("increase the sharpness, brightness and contrast a little")
    assert {a.attribute for a in reading.adjustments} == {"sharpness", "brightness", "contrast"}
    assert all(a.sign == 1 and a.amount < 1 for a in reading.adjustments)  # the amount covers the list


def test_negation_and_neutral_words_in_the_grammar() -> None:
    assert signs("not so bright") == {"brightness": -1}
    assert signs("don't make it so dark") == {"brightness": 1}
    assert signs("it isn't warm enough") == {"warmth": 1}
    assert signs("not too warm") == {"warmth": 1}  # gently warm, not cold
    assert signs("the contrast is too high") == {"contrast": -1}
    assert signs("the shadows are too dark") == {"shadows": 1}
    assert signs("reduce the darkness") == {"brightness": 1}
    assert signs("crush the blacks") == {"shadows": -1}
    assert read("adjust the brightness").adjustments == ()  # no direction asked: nothing invented
    assert read("keep the warm tones").adjustments == ()


def test_purpose_clause_does_not_reverse_the_instruction() -> None:
    # "to add shadows" says why; the instruction is "darken", and the photo must get darker.
    assert signs("darken it slightly to add more shadow") == {"brightness": -1}
    assert signs("lighten it so that it is brighter") == {"brightness": 1}


def test_purpose_clause_does_not_add_what_the_instruction_already_does() -> None:
    # One brightening, not exposure plus brightness on top: the purpose restates the instruction.
    assert signs("increase the exposure to make it brighter") == {"exposure": 1}
    assert signs("brighten it so the shadows are lighter") == {"brightness": 1}
    # A different kind of change in the purpose still adds.
    assert signs("darken it so it feels warmer") == {"brightness": -1, "warmth": 1}


def test_look_plus_clause_keeps_the_look_and_adds_the_instruction(teacher, photos) -> None:
    look, less_sat, brighter = teacher.label_sync(["golden hour", "golden hour but less saturated",
                                                   "moody, but a bit brighter"])
    moody = teacher.label_sync(["moody"])[0]
    assert _value(less_sat.edit.canonical_dict(), "temperature") > 0  # still golden hour
    assert less_sat.edit.filter is not None and less_sat.edit.filter.name == look.edit.filter.name
    sat = [image_stats(Renderer(lab.edit)(photos[0]))["chroma"] for lab in (look, less_sat)]
    assert sat[1] < sat[0] * (1 - THRESHOLD["chroma"])
    lum = [image_stats(Renderer(lab.edit)(photos[0]))["luma"] for lab in (moody, brighter)]
    assert lum[1] - lum[0] >= THRESHOLD["luma"]
    assert _value(brighter.edit.canonical_dict(), "shadows") < 0  # the moody part survives


def test_unsupported_part_is_reported_and_the_rest_is_done(teacher) -> None:
    part, none, crop = teacher.label_sync(["brighten the photo and remove the dog", "remove the dog",
                                           "crop it to a square and make it warmer"])
    assert _value(part.edit.canonical_dict(), "brightness") > 0
    assert part.unsupported == ("remove the dog",)
    assert part.as_dict()["unsupported"] == ["remove the dog"]
    assert none.edit.is_empty and none.unsupported
    assert _value(crop.edit.canonical_dict(), "temperature") > 0 and any("crop" in u for u in crop.unsupported)
    assert teacher.label_sync(["make it warmer"])[0].unsupported == ()


def test_named_colours_are_local_on_objects_and_a_tone_otherwise(teacher) -> None:
    sky, grass, tone, too = (lab.edit.canonical_dict() for lab in teacher.label_sync(
        ["make the sky bluer", "greener grass please", "add a blue tone to the picture", "the photo is too yellow"]))
    assert _value(sky, "blue.saturation") > 0 and _value(sky, "temperature") == 0
    assert _value(grass, "green.saturation") > 0
    assert _value(tone, "temperature") < 0
    assert _value(too, "temperature") < 0 and _value(too, "yellow.saturation") < 0


def test_a_colour_named_as_the_photos_state_is_a_cast_to_remove() -> None:
    # "the image is dark" asks for brighter; "the image is purple" likewise asks for less purple.
    assert signs("the image is purple") == {"purple": -1}
    assert signs("it looks a bit green") == {"green": -1}
    # Wishes and descriptions of an object keep the colour asked for.
    assert signs("the result should be more purple") == {"purple": 1}
    assert signs("make the photo look purple") == {"purple": 1}
    assert signs("i want the image to be yellow") == {"yellow": 1}


def test_typos_and_case(teacher) -> None:
    loud, slip, slip2 = (lab.edit.canonical_dict() for lab in teacher.label_sync(
        ["INCREASE THE BRIGTHNESS", "reduce the saturaton", "Make The Colour Pallet Warmer"]))
    assert _value(loud, "brightness") > 0
    assert _value(slip, "saturation") < 0
    assert _value(slip2, "temperature") > 0 and _value(slip2, "saturation") == 0  # "pallet" is not "pale"


def test_llm_prompt_carries_the_same_table() -> None:
    prompt = system_prompt()
    assert adjustments.guidance() in prompt
    for attribute in adjustments.ATTRIBUTES:
        if attribute.up:
            assert f"- {attribute.name}: more = " in prompt
    explicit = {text: edit for text, edit in EXAMPLES if text in ("slightly brighter", "make the sky bluer")}
    assert explicit == {t: adjustments.example_edit(t) for t in explicit} and len(explicit) == 2


def test_offline_labels_agree_with_the_llm_examples(teacher) -> None:
    # One definition: where the LLM prompt shows a table-generated example, the offline teacher gives it.
    for text, edit in EXAMPLES:
        if text in ("slightly brighter", "make the sky bluer", "increase the contrast, less saturation"):
            assert teacher.label_sync([text])[0].edit.canonical_dict() == edit, text


def test_version_names_the_table() -> None:
    assert adjustments.table_digest() in OfflineTeacher().version


def _dev_rows() -> list[list[str]]:
    from foundation.settings import get_settings

    path = Path(get_settings().real_requests_dir) / "dev.tsv"
    if not path.exists():
        pytest.skip(f"real-request dev set not found at {path} (TONEFLOW_REAL_REQUESTS_DIR)")
    with path.open(encoding="utf-8") as fh:
        return [row for row in csv.reader(fh, delimiter="\t") if row and not row[0].startswith("#")]


@pytest.mark.slow
def test_direction_accuracy_on_real_requests(teacher, photos) -> None:
    """>= 95% of the shared dev set's requests move the photo the asked way (read at run time)."""
    rows = _dev_rows()
    labels = teacher.label_sync([r[0] for r in rows])
    base = [image_stats(p) for p in photos]
    right = 0
    for (_, stat, way, threshold), label in zip(rows, labels, strict=True):
        renderer = Renderer(label.edit)
        delta = float(np.mean([change(b, image_stats(renderer(p)), stat) for p, b in zip(photos, base, strict=True)]))
        right += delta >= float(threshold) if way == "up" else delta <= -float(threshold)
    assert right / len(rows) >= 0.95, f"{right}/{len(rows)}"
