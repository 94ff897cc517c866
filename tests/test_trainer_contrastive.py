"""Contrastive augmentation (trainer/contrastive.py): flips mirror the label, origins are kept, no leaks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from foundation.settings import Settings
from teacher import adjustments
from teacher.library import edit_vector
from teacher.offline import OfflineTeacher
from trainer import snapshot
from trainer.contrastive import contrastive_rows, flip_one, flip_text
from trainer.data import Example, make_example
from trainer.exceptions import TrainerError

# Requests of the failure classes of issue 12: direction, amount, two clauses, look + clause.
REQUESTS = ("increase the brightness a little", "decrease the contrast", "make it warmer",
            "raise the saturation by 50%", "brighten the image and lower the saturation slightly",
            "golden hour but more saturated", "sharpen it and make the colours more vivid",
            "boost the exposure a bit", "reduce the highlights", "make the sky bluer",
            "turn up the contrast slightly", "more contrast and cooler tones")


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> OfflineTeacher:
    return OfflineTeacher(cache_dir=tmp_path_factory.mktemp("cache"))


def labelled(teacher: OfflineTeacher, prompts: list[str]) -> list[Example]:
    return [make_example(lab.prompt, lab.edit.canonical_json()) for lab in teacher.label_sync(prompts)
            if lab.edit is not None]


def in_train(settings: Settings, text: str) -> bool:
    return snapshot.split_of(text, settings.test_fraction, settings.val_fraction) == "train"


def test_opposites_are_opposite_in_the_table() -> None:
    for a, b in adjustments.OPPOSITES:
        # A word that carries an attribute is read alone; a plain cue needs an attribute to act on.
        ra, rb = (adjustments.read(w).adjustments for w in (a, b))
        if not (ra and rb):
            ra, rb = (adjustments.read(f"{w} contrast").adjustments for w in (a, b))
        assert ra and rb, (a, b)
        assert sorted((x.attribute, -x.sign) for x in ra) == sorted((x.attribute, x.sign) for x in rb), (a, b)


def test_flip_text_swaps_direction_words_both_ways() -> None:
    assert flip_text("Increase the brightness, lower the saturation") == "decrease the brightness, raise the saturation"
    assert flip_text(flip_text("make it warmer and more contrasty")) == "make it warmer and more contrasty"


def test_flipped_request_gets_the_mirrored_label(settings: Settings, teacher: OfflineTeacher) -> None:
    rows = labelled(teacher, [p for p in REQUESTS if in_train(settings, p)])
    assert len(rows) >= 6
    made = [r for r in contrastive_rows(rows, settings) if r.label_source == "contrastive_flip"]
    assert len(made) >= 4
    by_prompt = {r.prompt: r for r in rows}
    for row in made:
        assert row.augmented and row.origin in by_prompt
        original = np.asarray(edit_vector(by_prompt[row.origin].edit_obj))
        mirrored = np.asarray(edit_vector(row.edit_obj))
        # The explicit part turns round: the parameters it moved now move the other way.
        moved = np.abs(original) > 0
        assert np.any(np.sign(mirrored[moved]) == -np.sign(original[moved]))
        # And it is what the teacher itself says about the flipped request.
        (asked,) = teacher.label_sync([row.prompt])
        assert asked.edit is not None
        assert np.abs(np.asarray(edit_vector(asked.edit)) - mirrored).max() <= 2, row.prompt


def test_brightness_flip_is_darker(settings: Settings, teacher: OfflineTeacher) -> None:
    candidates = [f"{frame}{verb} the {noun} a little" for frame in ("", "please ", "can you ")
                  for verb in ("increase", "raise", "boost") for noun in ("brightness", "lightness", "luminosity")]
    prompt = next(p for p in candidates if in_train(settings, p) and in_train(settings, flip_text(p)))
    (flip,) = [r for r in contrastive_rows(labelled(teacher, [prompt]), settings)
               if r.label_source == "contrastive_flip"]
    assert flip.prompt == flip_text(prompt) and flip.origin == prompt
    assert any(w in flip.prompt for w in ("decrease", "lower", "reduce"))
    assert flip.edit_obj.canonical_dict()["adjust"]["brightness"] < 0


def test_flip_one_turns_one_clause_round_and_keeps_the_other(settings: Settings, teacher: OfflineTeacher) -> None:
    assert flip_one("Increase the brightness, lower the saturation", 1) == "increase the brightness, raise the saturation"
    two = [f"{a} the brightness and {b} the saturation{tail}" for a in ("increase", "raise", "boost")
           for b in ("increase", "raise", "boost") for tail in ("", " please", " a bit")]
    rows = labelled(teacher, [p for p in two if in_train(settings, p)][:6])
    made = contrastive_rows(rows, settings, kinds=("flip_one",))
    assert made and {r.label_source for r in made} == {"contrastive_flip_one"}
    for row in made:
        adjust = row.edit_obj.canonical_dict()["adjust"]
        # exactly one of the two attributes turned round: the student sees each direction word bound to its own noun
        assert (adjust["brightness"] < 0) != (adjust["saturation"] < 0), row.prompt
        (asked,) = teacher.label_sync([row.prompt])
        assert asked.edit is not None
        assert np.abs(np.asarray(edit_vector(asked.edit)) - np.asarray(edit_vector(row.edit_obj))).max() <= 2
    # one direction word for both attributes: flipping it is the plain flip, not this kind
    shared = next(p for p in (f"{a} the brightness and saturation{t}" for a in ("increase", "raise", "boost")
                              for t in ("", " please", " a bit")) if in_train(settings, p) and in_train(settings, flip_text(p)))
    one = labelled(teacher, [shared])
    assert contrastive_rows(one, settings, kinds=("flip",))  # the row is usable, just not for this kind
    assert not contrastive_rows(one, settings, kinds=("flip_one",))


def test_scaled_and_recombined_rows_keep_signs_and_add_clauses(settings: Settings, teacher: OfflineTeacher) -> None:
    rows = labelled(teacher, [p for p in REQUESTS if in_train(settings, p)])
    made = contrastive_rows(rows, settings, seed=3)
    origin = {r.prompt: r for r in rows}
    scaled = [r for r in made if r.label_source == "contrastive_scale"]
    joined = [r for r in made if r.label_source == "contrastive_recombine"]
    assert scaled and joined
    for row in scaled:
        a, b = np.asarray(edit_vector(origin[row.origin].edit_obj)), np.asarray(edit_vector(row.edit_obj))
        both = (np.abs(a) > 0) & (np.abs(b) > 0)
        assert np.all(np.sign(a[both]) == np.sign(b[both])) and not np.array_equal(a, b), row.prompt
    for row in joined:
        assert row.prompt.startswith(row.origin.lower().rstrip(".")) and len(row.prompt) > len(row.origin)
        (asked,) = teacher.label_sync([row.prompt])
        assert asked.edit is not None
        assert np.abs(np.asarray(edit_vector(asked.edit)) - np.asarray(edit_vector(row.edit_obj))).max() <= 2


def test_kinds_choose_which_variants_are_made(settings: Settings, teacher: OfflineTeacher) -> None:
    rows = labelled(teacher, [p for p in REQUESTS if in_train(settings, p)])
    every = contrastive_rows(rows, settings, seed=3)
    flips = contrastive_rows(rows, settings, seed=3, kinds=("flip",))
    assert flips and {r.label_source for r in flips} == {"contrastive_flip"}
    # the same flips as with every kind (more only where another kind took a flip's text first)
    assert {r.prompt for r in flips} >= {r.prompt for r in every if r.label_source == "contrastive_flip"}
    with pytest.raises(TrainerError, match="unknown contrastive kind"):
        contrastive_rows(rows, settings, kinds=("mirror",))


def test_nothing_from_held_out_splits_leaks(settings: Settings, teacher: OfflineTeacher) -> None:
    prompts = [f"{verb} the {attr} {amount}" for verb in ("increase", "decrease", "boost", "reduce")
               for attr in ("brightness", "contrast", "saturation", "warmth", "exposure", "sharpness")
               for amount in ("slightly", "a lot", "a little")]
    rows = labelled(teacher, prompts)
    held_out = {r.prompt for r in rows if not in_train(settings, r.prompt_norm)}
    assert held_out  # the test means something only with rows in validation/test
    made = contrastive_rows(rows, settings)
    assert made
    assert not {r.origin for r in made} & held_out
    assert all(in_train(settings, r.prompt_norm) for r in made)
    snap = snapshot.create(settings, rows, policy="p", source={}, augmented=made)
    for split in ("validation", "test"):
        assert not any(r.augmented for r in snap.rows(split))


def test_train_contrastive_snapshots_marked_rows_in_train_only(settings: Settings, teacher: OfflineTeacher,
                                                               tmp_path: Path) -> None:
    from trainer.config import TrainConfig
    from trainer.train import resolve_snapshot

    prompts = [f"{verb} the {attr} {amount}" for verb in ("increase", "decrease", "raise", "lower")
               for attr in ("brightness", "contrast", "saturation", "warmth", "sharpness")
               for amount in ("slightly", "a lot")]
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"prompt": r.prompt, "edit": json.loads(r.edit)}) + "\n"
                            for r in labelled(teacher, prompts)), encoding="utf-8")
    plain = resolve_snapshot(settings, TrainConfig(input=str(data), auto_augment=False, contrastive=False))
    assert not any(r.augmented for r in plain.rows("train"))
    # every kind: these prompts are each other's flips, so flips alone (the default) would all be taken already
    snap = resolve_snapshot(settings, TrainConfig(input=str(data), auto_augment=False, contrastive=True,
                                                  contrastive_kinds="flip,scale,recombine"))
    extra = [r for r in snap.rows("train") if r.augmented]
    assert extra and all(r.label_source.startswith("contrastive_") and r.origin for r in extra)
    originals = {r.prompt for r in snap.rows("train") if not r.augmented}
    assert {r.origin for r in extra} <= originals
    for split in ("validation", "test"):
        assert not any(r.augmented for r in snap.rows(split))
