"""Data augmentation (the paper's RQ2) and cheap paraphrases.

Two kinds of augmented rows, both marked ``augmented=True`` and only ever placed in train:

* **Paraphrases** of training prompts (synonyms, framing, word order, typos). The meaning does
  not change, so the source row's label is reused: no teacher call. ``auto_augment`` applies
  them to look slices (``schemas.edit.look_slice``) with fewer than ``augment_min_slice``
  training examples: the low-data regime where the paper measured +25%.
* **Neighbour intents** of the prompts the current student gets wrong on validation (the paper's
  method: "cool tone" from "cool morning"), written by the LLM when the OpenAI-compatible teacher
  is configured (``trainer.intent_writer``), else offline: each wrong prompt keeps one of its
  words and takes a partner word from the training vocabulary, or a framing. New intents mean new
  labels, so the teacher labels them (OpenAI-compatible when configured, else offline).

Leakage guard: a generated prompt is kept only if its normalised form hashes to the train split
and is not in the pinned benchmark, so it can never become a validation/test intent later.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from foundation.settings import Settings
from schemas.edit import look_slice
from schemas.text import normalise_prompt
from streams.vocabulary import FRAMES, typo
from trainer.data import Example, make_example
from trainer.grouping import intent_key
from trainer.metrics import sample_score
from trainer.snapshot import pinned_rows, split_of

SYNONYMS: dict[str, tuple[str, ...]] = {
    "warm": ("warmer", "toasty"), "cool": ("cold", "chilly"), "moody": ("moodier", "brooding"),
    "bright": ("brighter", "luminous"), "dark": ("darker", "dim"), "vintage": ("retro", "old school"),
    "soft": ("gentle", "softer"), "vivid": ("vibrant", "punchy"), "faded": ("washed out", "muted"),
    "dramatic": ("intense", "bold"), "film": ("analog", "analogue"), "pastel": ("soft pastel",),
    "cinematic": ("movie like", "filmic"), "black and white": ("b&w", "monochrome"),
}
STOPWORDS = frozenset(["a", "an", "the", "it", "this", "make", "me", "please", "i", "want", "give", "look", "style", "vibe", "feel", "with", "and", "of", "to", "for", "more", "less", "very", "slightly", "bit", "some"])
_WORD = re.compile(r"[a-z][a-z&'-]+")


def paraphrase(prompt: str, rng: random.Random) -> str:
    """One meaning-preserving variant: a synonym, a framing, a word-order swap or a typo."""
    text = normalise_prompt(prompt)
    kind = rng.choice(("synonym", "frame", "order", "typo"))
    if kind == "synonym":
        hits = [w for w in SYNONYMS if re.search(rf"\b{re.escape(w)}\b", text)]
        if hits:
            w = rng.choice(hits)
            return re.sub(rf"\b{re.escape(w)}\b", rng.choice(SYNONYMS[w]), text, count=1)
        kind = "frame"
    if kind == "order" and " and " in text:
        left, right = text.split(" and ", 1)
        return f"{right} and {left}"
    if kind == "typo":
        return typo(text, rng)
    return rng.choice(FRAMES[1:]).format(p=text)


def _train_only(settings: Settings) -> Callable[[str], bool]:
    pinned = {intent_key(r.prompt_norm) for r in pinned_rows(settings)}
    return lambda norm: (split_of(norm, settings.test_fraction, settings.val_fraction) == "train"
                         and intent_key(norm) not in pinned)


def _aug_example(prompt: str, edit: str, origin: str, source: str) -> Example:
    ex = make_example(prompt, edit, augmented=True, origin=origin, label_source=source)
    return ex


def paraphrases(rows: Sequence[Example], per_row: int, settings: Settings, seed: int = 0,
                taken: set[str] | None = None) -> list[Example]:
    """Up to ``per_row`` new paraphrases of each row, labelled with the row's own edit."""
    ok = _train_only(settings)
    taken = set(taken or ()) | {r.prompt_norm for r in rows}
    out = []
    for row in rows:
        rng = random.Random(int(hashlib.sha256(f"{seed}:{row.prompt_norm}".encode()).hexdigest()[:8], 16))
        made, tries = 0, 0
        while made < per_row and tries < per_row * 6:
            tries += 1
            text = paraphrase(row.prompt, rng)
            norm = normalise_prompt(text)
            if norm in taken or not ok(norm):
                continue
            taken.add(norm)
            out.append(_aug_example(text, row.edit, row.prompt, "paraphrase"))
            made += 1
    return out


def auto_augment(rows: Sequence[Example], settings: Settings, seed: int = 0, max_per_row: int = 4) -> list[Example]:
    """Paraphrases for look slices with fewer than ``settings.augment_min_slice`` training rows."""
    threshold = settings.augment_min_slice
    if threshold <= 0:
        return []
    ok = _train_only(settings)
    train = [r for r in rows if ok(r.prompt_norm)]
    slices = Counter(look_slice(r.edit_obj) for r in train)
    out: list[Example] = []
    taken = {r.prompt_norm for r in rows}
    for name, count in sorted(slices.items()):
        if count >= threshold:
            continue
        members = [r for r in train if look_slice(r.edit_obj) == name]
        per_row = min(max_per_row, -(-(threshold - count) // count))  # ceil division
        made = paraphrases(members, per_row, settings, seed, taken)
        taken |= {r.prompt_norm for r in made}
        out.extend(made)
    return out


def neighbour_intents(wrong: Sequence[str], vocabulary: Sequence[str], per_prompt: int, rng: random.Random) -> list[str]:
    """New look requests near each wrong prompt: keep one content word, add a partner word or a frame."""
    out = []
    for prompt in wrong:
        words = [w for w in _WORD.findall(normalise_prompt(prompt)) if w not in STOPWORDS]
        if not words:
            continue
        for _ in range(per_prompt):
            keep = rng.choice(words)
            partner = rng.choice(vocabulary) if vocabulary else ""
            if partner and partner != keep and rng.random() < 0.7:
                out.append(f"{keep} {partner}" if rng.random() < 0.5 else f"{partner} {keep}")
            else:
                out.append(rng.choice(FRAMES[1:]).format(p=" ".join(words)))
    return out


def label_with_teacher(prompts: Sequence[str], settings: Settings) -> list[tuple[str, str]]:
    """(prompt, canonical edit JSON) for every prompt the teacher labelled successfully."""
    from teacher import get_teacher

    teacher = get_teacher(settings)
    labels = asyncio.run(teacher.label(list(prompts)))
    return [(lab.prompt, lab.edit.canonical_json()) for lab in labels if lab.ok and lab.edit is not None]


def targeted(student: Any, train: Sequence[Example], val: Sequence[Example], settings: Settings, *,
             per_prompt: int = 6, threshold: float = 0.75, seed: int = 0) -> list[Example]:
    """Teacher-labelled neighbour intents of the validation prompts the student gets wrong."""
    rng = random.Random(seed)
    preds = student.predict([r.prompt for r in val])
    wrong = [r.prompt for r, p in zip(val, preds, strict=True) if sample_score(p, r.edit_obj) < threshold]
    counts = Counter(w for r in train for w in _WORD.findall(r.prompt_norm) if w not in STOPWORDS)
    vocabulary = [w for w, _ in counts.most_common(300)]
    ok = _train_only(settings)
    taken = {r.prompt_norm for r in (*train, *val)}
    from trainer.intent_writer import llm_writer

    writer = llm_writer(settings)
    written = writer.write(wrong, per_prompt) if writer else neighbour_intents(wrong, vocabulary, per_prompt, rng)
    prompts = []
    for text in written:
        norm = normalise_prompt(text)
        if norm not in taken and ok(norm):
            taken.add(norm)
            prompts.append(text)
    return [_aug_example(p, edit, "", "teacher_augment") for p, edit in label_with_teacher(prompts, settings)]


def augment_round(student: Any, train: list[Example], val: list[Example], settings: Settings, *,
                  make_student: Callable[[], Any], seed: int = 0, paraphrase_per_row: int = 1,
                  per_prompt: int = 6) -> tuple[Any, list[Example], Any]:
    """The paper's RQ2 loop: find the student's validation mistakes, add teacher-labelled neighbour
    intents (+ cheap paraphrases of the training rows), and retrain a fresh student on the union."""
    extra = targeted(student, train, val, settings, per_prompt=per_prompt, seed=seed)
    taken = {r.prompt_norm for r in (*train, *val, *extra)}
    cheap = paraphrases(train, paraphrase_per_row, settings, seed, taken) if paraphrase_per_row else []
    bigger = [*train, *extra, *cheap]
    fresh = make_student()
    report = fresh.fit(bigger, val)
    report.notes.append(f"augment_round: +{len(extra)} teacher-labelled neighbour intents, +{len(cheap)} paraphrases")
    return fresh, bigger, report
