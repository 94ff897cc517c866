"""Contrastive augmentation: the same request asking the other way, harder or softer, or with more clauses.

Sentence encoders barely separate "increase" from "decrease" (issue 12); a student learns the
difference only from pairs that differ in that word and have opposite labels. From each training
row whose request the adjustment table reads (``teacher.adjustments.read``) this makes:

* **flip**: every direction phrase swapped for its opposite (``adjustments.OPPOSITES``), label
  mirrored: the table's part of the label is replaced by the table's reading of the flipped text;
* **flip_one**: one direction phrase of a request with several swapped, the others kept, label
  relabelled the same way: "increase brightness and increase saturation" → "decrease brightness
  and increase saturation"; the student must tie each direction word to its own attribute
  (the demo student averaged "lessen the brightness and increase the saturation" into ~0 for both);
* **scale**: an amount phrase changed, or one added (``adjustments.SCALES``), label rescaled the same way;
* **recombine**: the request joined with a second, purely explicit training request, label = this
  row's label with the table's part replaced by the reading of the joined text.

The label arithmetic is the offline teacher's own (``teacher/offline.py`` adds the table's vector to
the look part, and leaves the look part to the text the table does not explain), so a new row is
kept only when the table reads the new text the intended way: the same leftover text (the same look
part), the signs all flipped (flip), some but not all flipped (flip_one), the same attributes and
signs at other amounts (scale), both requests' attributes (recombine). Every row is marked
``augmented=True`` with ``origin`` = the training prompt it came from and ``label_source`` =
``contrastive_flip|flip_one|scale|recombine``.

Leakage guard (as in ``trainer/augment.py``): only training rows are used, and a new prompt is kept
only if it also hashes to the train split and is not in the pinned benchmark; ``snapshot.create``
drops any whose intent group is held out as well.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence

import numpy as np

from foundation.settings import Settings
from schemas.text import normalise_prompt
from teacher import adjustments
from teacher.adjustments import Adjustment, Reading
from teacher.library import VECTOR_KEYS, edit_vector, vector_to_edit
from teacher.offline import MIN_VISIBLE
from trainer.augment import train_only
from trainer.data import Example, make_example
from trainer.exceptions import TrainerError

_FLIP: dict[str, str] = {}
for _a, _b in adjustments.OPPOSITES:
    _FLIP.setdefault(_a, _b)
    _FLIP.setdefault(_b, _a)
_FLIP_RE = re.compile(r"\b(" + "|".join(re.escape(w) for w in sorted(_FLIP, key=len, reverse=True)) + r")\b")
_SCALE_RE = re.compile(r"\b(" + "|".join(re.escape(w) for w in sorted(adjustments.SCALES, key=len, reverse=True))
                       + r")\b")
_JOINERS = (" and ", ", ", ", then ", ". ", " and also ")


def flip_text(text: str) -> str:
    """``text`` with every direction phrase of ``adjustments.OPPOSITES`` swapped for its partner."""
    return _FLIP_RE.sub(lambda m: _FLIP[m.group(1)], normalise_prompt(text))


def flip_one(text: str, index: int) -> str:
    """``text`` with only its ``index``-th direction phrase swapped (``flip_text`` swaps them all)."""
    norm = normalise_prompt(text)
    matches = list(_FLIP_RE.finditer(norm))
    m = matches[index]
    return norm[:m.start()] + _FLIP[m.group(1)] + norm[m.end():]


def _key(adjs: Sequence[Adjustment], sign: int = 1) -> list[tuple[str, int, float]]:
    return sorted((a.attribute, a.sign * sign, round(a.amount, 3)) for a in adjs)


def relabel(edit_json: str, old: Reading, new: Reading) -> str | None:
    """The label with the table's part for ``old`` replaced by the table's part for ``new``.

    ``None`` when the label was clamped at ±100 (its look part cannot be recovered). What is left
    after taking the table's part away is the look part, up to the teacher's rounding and its
    dropping of invisible changes (``MIN_VISIBLE``): residues that small are not a look and go.
    """
    from schemas.validation import validate_edit

    edit = validate_edit(edit_json)
    label = np.asarray(edit_vector(edit))
    if np.any(np.abs(label) >= 100):
        return None
    look = label - adjustments.to_vector(old.adjustments, VECTOR_KEYS)
    look = np.where(np.abs(look) <= MIN_VISIBLE + 0.5, 0.0, look)
    vector = look + adjustments.to_vector(new.adjustments, VECTOR_KEYS)
    vector = np.where(np.abs(vector) < MIN_VISIBLE, 0.0, vector)  # as the teacher drops invisible changes
    canon = edit.canonical_dict().get("filter")
    return vector_to_edit(vector, (canon["name"], canon["intensity"]) if canon else None).canonical_json()


class _Reader:
    """The offline teacher's reading of the explicit part (``OfflineTeacher.grammar``), memoised."""

    def __init__(self) -> None:
        from teacher.offline import OfflineTeacher

        self._teacher = OfflineTeacher()
        self._seen: dict[str, Reading] = {}

    def __call__(self, text: str) -> Reading:
        if text not in self._seen:
            self._seen[text] = self._teacher.grammar(text)
        return self._seen[text]


def _flip(text: str, reading: Reading, read: _Reader) -> tuple[str, Reading] | None:
    new = flip_text(text)
    got = read(new)
    if got.rest != reading.rest or _key(got.adjustments) != _key(reading.adjustments, -1):
        return None
    return new, got


def _flip_one(text: str, reading: Reading, read: _Reader, rng: random.Random) -> tuple[str, Reading] | None:
    """One clause flipped, the others kept: the same attributes, some (not all) signs swapped."""
    phrases = len(_FLIP_RE.findall(normalise_prompt(text)))
    if phrases < 2 or len(reading.adjustments) < 2:
        return None  # one direction word for every attribute: flipping it is the plain flip
    new = flip_one(text, rng.randrange(phrases))
    got = read(new)
    before = {a.attribute: a.sign for a in reading.adjustments}
    after = {a.attribute: a.sign for a in got.adjustments}
    changed = [a for a in before if after.get(a) != before[a]]
    if got.rest != reading.rest or set(after) != set(before) or not changed or len(changed) == len(before):
        return None
    return new, got


def _scale(text: str, reading: Reading, read: _Reader, rng: random.Random) -> tuple[str, Reading] | None:
    norm = normalise_prompt(text)
    present = _SCALE_RE.findall(norm)
    word = rng.choice([w for w in adjustments.SCALES if w not in present])
    new = _SCALE_RE.sub(word, norm, count=1) if present else f"{norm} {word}"
    got = read(new)
    same = sorted((a.attribute, a.sign) for a in got.adjustments) == sorted(
        (a.attribute, a.sign) for a in reading.adjustments)
    if got.rest != reading.rest or not same or _key(got.adjustments) == _key(reading.adjustments):
        return None
    return new, got


def _recombine(text: str, reading: Reading, other: str, other_reading: Reading, read: _Reader,
               rng: random.Random) -> tuple[str, Reading] | None:
    new = f"{normalise_prompt(text)}{rng.choice(_JOINERS)}{normalise_prompt(other)}"
    got = read(new)
    wanted = {a.attribute for a in (*reading.adjustments, *other_reading.adjustments)}
    if got.rest != reading.rest or {a.attribute for a in got.adjustments} != wanted:
        return None
    return new, got


KINDS = ("flip", "flip_one", "scale", "recombine")


def contrastive_rows(rows: Sequence[Example], settings: Settings, *, seed: int = 0, per_row: int = 1,
                     taken: set[str] | None = None, kinds: Sequence[str] = KINDS) -> list[Example]:
    """Flipped, scaled and recombined variants (``kinds``) of the training rows the adjustment table reads."""
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        msg = (f"unknown contrastive kind(s) {', '.join(unknown)}; pick from {', '.join(KINDS)} "
               "(`toneflow train --contrastive-kinds flip,scale`)")
        raise TrainerError(msg)
    ok = train_only(settings)
    read = _Reader()
    train = [r for r in rows if ok(r.prompt_norm)]
    readings = {r.id: read(r.prompt) for r in train}
    explicit = [r for r in train if readings[r.id].adjustments]
    partners = [r for r in explicit if not readings[r.id].rest]  # purely explicit: safe to append
    taken = set(taken or ()) | {r.prompt_norm for r in rows}
    out: list[Example] = []

    def keep(made: tuple[str, Reading] | None, row: Example, reading: Reading, kind: str) -> None:
        if made is None:
            return
        text, got = made
        norm = normalise_prompt(text)
        if norm in taken or not ok(norm):
            return
        label = relabel(row.edit, reading, got)
        if label is None:
            return
        taken.add(norm)
        out.append(make_example(text, label, augmented=True, origin=row.prompt, label_source=f"contrastive_{kind}"))

    for row in explicit:
        rng = random.Random(int(hashlib.sha256(f"{seed}:contrastive:{row.prompt_norm}".encode()).hexdigest()[:8], 16))
        reading = readings[row.id]
        if "flip" in kinds:
            keep(_flip(row.prompt, reading, read), row, reading, "flip")
        if "flip_one" in kinds:
            keep(_flip_one(row.prompt, reading, read, rng), row, reading, "flip_one")
        for _ in range(per_row):
            if "scale" in kinds:
                keep(_scale(row.prompt, reading, read, rng), row, reading, "scale")
            if partners and "recombine" in kinds:
                other = rng.choice(partners)
                if other.id != row.id:
                    keep(_recombine(row.prompt, reading, other.prompt, readings[other.id], read, rng),
                         row, reading, "recombine")
    return out
