"""Data augmentation (the paper's RQ2) and cheap paraphrases.

Two kinds of augmented rows, both marked ``augmented=True`` and only ever placed in train:

* **Paraphrases** of training prompts (synonyms, framing, word order, typos). The meaning does
  not change, so the source row's label is reused: no teacher call. ``auto_augment`` applies
  them to look slices (``schemas.edit.look_slice``) with fewer than ``augment_min_slice``
  training examples: the low-data regime where the paper measured +25%.
* **Neighbour intents** of the prompts the current student gets wrong on validation (the paper's
  method: "cool tone" from "cool morning"), written by the LLM when the OpenAI-compatible teacher
  is configured (``trainer.intent_writer``), else offline by ``LookNeighbours``: the offline
  teacher reads each mistake (which looks it means), and requests are written around those looks
  and the looks nearest to them in wording and in edit (the teacher's look library is what the
  offline teacher knows, as an LLM knows look names): a neighbour look alone, framed and modified,
  two neighbours together, a neighbour with a phrase of a training request, sometimes a typo.
  Worse mistakes get more requests (``mistake_budget``), so the budget grows with the number and
  the size of the mistakes. ``neighbour_intents`` (one word of the mistake + a word of the training
  vocabulary) is the older offline writer, kept as ``writer="recombine"``. New intents mean new
  labels, so the teacher labels them (OpenAI-compatible when configured, else offline). Each row's
  ``origin`` is the validation mistake it was written around.

Leakage guard (no test row is ever read): a generated prompt is kept only if its intent key hashes
to the train split and is not in the pinned benchmark, so it can never be a validation/test intent;
a typo is kept only if the clean text it was made from passes too, and a key with a short word at
an edge only if the key without it passes, because ``trainer.grouping`` joins such keys into one
intent group. ``tests/test_trainer_augment.py`` checks on a real snapshot that no augmented row
shares an intent group with the test split.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from foundation.settings import Settings
from schemas.edit import look_slice
from schemas.text import normalise_prompt
from streams.vocabulary import FRAMES, typo
from trainer.data import Example, make_example
from trainer.grouping import IntentGroups, intent_key
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


def train_only(settings: Settings) -> Callable[[str], bool]:
    """``ok(norm)``: ``norm`` falls in the train split and is no pinned (held-out) intent."""
    pinned = {intent_key(r.prompt_norm) for r in pinned_rows(settings)}
    return lambda norm: (split_of(norm, settings.test_fraction, settings.val_fraction) == "train"
                         and intent_key(norm) not in pinned)


def _aug_example(prompt: str, edit: str, origin: str, source: str) -> Example:
    ex = make_example(prompt, edit, augmented=True, origin=origin, label_source=source)
    return ex


def paraphrases(rows: Sequence[Example], per_row: int, settings: Settings, seed: int = 0,
                taken: set[str] | None = None) -> list[Example]:
    """Up to ``per_row`` new paraphrases of each row, labelled with the row's own edit."""
    ok = train_only(settings)
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
    ok = train_only(settings)
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


def _edge_trimmed(key: str) -> list[str]:
    """The keys ``trainer.grouping`` would join ``key`` to by its edge rule (a short word at an end)."""
    words = key.split(" ")
    if len(words) < 2:
        return []
    return [" ".join(rest) for edge, rest in ((words[0], words[1:]), (words[-1], words[:-1]))
            if len(edge) <= 3 and edge.isalpha()]


def safe_for_train(settings: Settings) -> Callable[[str, str | None], bool]:
    """``ok(norm, clean)``: ``norm`` (and ``clean``, the text a typo was made from) may only be a train intent."""
    ok = train_only(settings)

    def safe(norm: str, clean: str | None = None) -> bool:
        if not ok(norm) or (clean is not None and not ok(clean)):
            return False
        return all(ok(rest) for rest in _edge_trimmed(intent_key(norm)))
    return safe


@dataclass(frozen=True)
class Mistake:
    """A validation prompt the student got wrong, and how wrong (its sample score, 0..1)."""

    prompt: str
    score: float


def mistake_budget(score: float, per_prompt: int, threshold: float) -> int:
    """Requests to write around one mistake: ``per_prompt / 2`` just under the threshold, up to
    ``2 * per_prompt`` for a mistake scored 0, so the worst mistakes get the most new examples."""
    badness = max(0.0, min(1.0, (threshold - score) / threshold)) if threshold > 0 else 1.0
    return max(1, round(per_prompt * (0.5 + 1.5 * badness)))


# How the offline writer dresses a phrase: the simulator's framings (``streams.vocabulary.FRAMES``),
# strength words the teacher reads (``teacher.intent.MODIFIERS``) and the joiners people use.
_WRITER_MODIFIERS = ("", "", "", "slightly", "a bit", "very", "a lot more", "a touch of", "super", "subtle",
                     "really", "a little", "extremely", "kind of", "not too")
_WRITER_JOINERS = (" and ", ", ", " with ", " plus ")
WRITER_FORMS = ("single", "pair", "with_train", "typo")
_FORM_WEIGHTS = (0.4, 0.25, 0.25, 0.1)


class LookNeighbours:
    """The offline writer: requests around each mistake's looks, from what the offline teacher knows.

    For one mistake, the neighbourhood is the looks the teacher reads in it, the ``by_wording``
    looks whose phrases are nearest to its clauses (the encoder the teacher matches with) and the
    ``by_edit`` looks whose edits are nearest to the first look read (cosine of the edit vectors):
    "sunset glow" gives golden hour, sunset, sunrise, ... New requests use those looks' phrases.
    """

    def __init__(self, teacher: Any = None, *, by_wording: int = 4, by_edit: int = 2) -> None:
        import numpy as np

        from teacher.offline import OfflineTeacher

        self.teacher = teacher or OfflineTeacher()
        self.library = self.teacher.library
        self.by_wording, self.by_edit = by_wording, by_edit
        looks = self.library.looks
        self._index = {look.name: i for i, look in enumerate(looks)}
        phrases = [p for look in looks for p in look.phrases]
        self._owner = np.array([i for i, look in enumerate(looks) for _ in look.phrases])
        self._phrase_vectors = np.asarray(self.teacher.encoder.encode(phrases), dtype=np.float64)
        edits = np.array([look.vector for look in looks], dtype=np.float64)
        norms = np.linalg.norm(edits, axis=1, keepdims=True)
        unit = np.divide(edits, norms, out=np.zeros_like(edits), where=norms > 0)
        self._edit_similarity = unit @ unit.T

    def _near_wording(self, texts: Sequence[str]) -> list[list[int]]:
        import numpy as np

        if not texts:
            return []
        sims = np.asarray(self.teacher.encoder.encode(list(texts)), dtype=np.float64) @ self._phrase_vectors.T
        out = []
        for row in sims:
            best = np.full(len(self.library.looks), -1.0)
            np.maximum.at(best, self._owner, row)
            out.append([int(i) for i in np.argsort(-best)[:self.by_wording]])
        return out

    def neighbourhoods(self, prompts: Sequence[str]) -> list[tuple[list[int], list[str]]]:
        """Per prompt: (look indices of its neighbourhood, best first; the clause texts the teacher read)."""
        readings = self.teacher.read(list(prompts))
        clauses = [[m.clause.text for m in r.matches if m.looks] for r in readings]
        near = iter(self._near_wording([c for cs in clauses for c in cs]))
        out = []
        for reading, texts in zip(readings, clauses, strict=True):
            looks: list[int] = []
            read = [self._index[name] for m in reading.matches for name, _ in m.looks if name in self._index]
            looks.extend(read)
            for _ in texts:
                looks.extend(next(near))
            if read:
                order = sorted(range(len(self.library.looks)), key=lambda j: -self._edit_similarity[read[0], j])
                looks.extend([j for j in order if j != read[0]][:self.by_edit])
            out.append((list(dict.fromkeys(looks)), texts))
        return out

    def clause_texts(self, prompts: Sequence[str]) -> list[str]:
        """The look clauses the teacher reads in ``prompts`` (the training vocabulary of phrases)."""
        return sorted({m.clause.text for r in self.teacher.read(list(prompts)) for m in r.matches if m.looks})

    def write(self, mistakes: Sequence[Mistake], budgets: Sequence[int], train_prompts: Sequence[str],
              rng: random.Random) -> list[tuple[str, str, str | None]]:
        """(request, the mistake it was written around, clean text if it is a typo) per new request."""
        hoods = self.neighbourhoods([m.prompt for m in mistakes])
        train_phrases = self.clause_texts(train_prompts)
        out: list[tuple[str, str, str | None]] = []
        for mistake, budget, (looks, own) in zip(mistakes, budgets, hoods, strict=True):
            pool = [p for i in looks for p in self.library.looks[i].phrases]
            if not pool:
                continue
            for _ in range(budget):
                form = rng.choices(WRITER_FORMS, weights=_FORM_WEIGHTS)[0]
                phrase = rng.choice(pool)
                modifier = rng.choice(_WRITER_MODIFIERS)
                single = rng.choice(FRAMES).format(p=f"{modifier} {phrase}".strip())
                clean = None
                if form == "pair":
                    other = rng.choice([*pool, *own])
                    text = f"{phrase}{rng.choice(_WRITER_JOINERS)}{other}"
                elif form == "with_train" and train_phrases:
                    other = rng.choice(train_phrases)
                    pair = (phrase, other) if rng.random() < 0.5 else (other, phrase)
                    text = rng.choice(_WRITER_JOINERS).join(pair)
                elif form == "typo":
                    text = typo(single, rng)
                    clean = single if text != single else None  # a short text or a swap of equal letters
                else:
                    text = single
                out.append((text, mistake.prompt, clean))
        return out


def find_mistakes(student: Any, val: Sequence[Example], threshold: float) -> list[Mistake]:
    """The validation rows the student scores below ``threshold`` on, worst first."""
    preds = student.predict([r.prompt for r in val])
    scored = [Mistake(r.prompt, sample_score(p, r.edit_obj)) for r, p in zip(val, preds, strict=True)]
    return sorted((m for m in scored if m.score < threshold), key=lambda m: (m.score, m.prompt))


WRITERS = ("neighbours", "recombine")


def targeted(student: Any, train: Sequence[Example], val: Sequence[Example], settings: Settings, *,
             per_prompt: int = 6, threshold: float = 0.75, seed: int = 0, writer: str = "neighbours",
             neighbours: LookNeighbours | None = None) -> list[Example]:
    """Teacher-labelled new requests around the validation prompts the student gets wrong.

    ``writer``: the LLM writer whenever the OpenAI-compatible teacher is configured; offline,
    ``"neighbours"`` (``LookNeighbours``, budget per mistake from ``mistake_budget``) or
    ``"recombine"`` (``neighbour_intents``: ``per_prompt`` word recombinations per mistake).
    """
    if writer not in WRITERS:
        msg = f"unknown augmentation writer {writer!r}; choose one of {', '.join(WRITERS)}"
        raise ValueError(msg)
    rng = random.Random(seed)
    mistakes = find_mistakes(student, val, threshold)
    safe = safe_for_train(settings)
    taken = {r.prompt_norm for r in (*train, *val)}
    from trainer.intent_writer import llm_writer

    llm = llm_writer(settings)
    written: list[tuple[str, str, str | None]]
    if llm is not None:
        wrong = [m.prompt for m in mistakes]
        written = [(t, "", None) for t in llm.write(wrong, per_prompt)]
    elif writer == "neighbours":
        budgets = [mistake_budget(m.score, per_prompt, threshold) for m in mistakes]
        written = (neighbours or LookNeighbours()).write(mistakes, budgets, [r.prompt for r in train], rng)
    else:
        counts = Counter(w for r in train for w in _WORD.findall(r.prompt_norm) if w not in STOPWORDS)
        vocabulary = [w for w, _ in counts.most_common(300)]
        written = [(t, m.prompt, None) for m in mistakes for t in neighbour_intents([m.prompt], vocabulary,
                                                                                   per_prompt, rng)]
    prompts, origins = [], {}
    for text, origin, clean in written:
        norm = normalise_prompt(text)
        if norm and norm not in taken and safe(norm, normalise_prompt(clean) if clean else None):
            taken.add(norm)
            prompts.append(text)
            origins[text] = origin
    return [_aug_example(p, edit, origins.get(p, ""), "teacher_augment")
            for p, edit in label_with_teacher(prompts, settings)]


def train_and_held_out(rows: Sequence[Example], settings: Settings) -> tuple[list[Example], list[Example]]:
    """(the rows whose intent group trains, the rest plus the pinned benchmark): the split
    ``snapshot.create`` will make of ``rows``, for writers that add rows before it runs."""
    pinned = pinned_rows(settings)
    groups = IntentGroups([r.prompt_norm for r in (*rows, *pinned)])
    splits = [groups.split(r.prompt_norm, settings.test_fraction, settings.val_fraction) for r in rows]
    train = [r for r, split in zip(rows, splits, strict=True) if split == "train"]
    return train, [*(r for r, split in zip(rows, splits, strict=True) if split != "train"), *pinned]


def held_out_screen(train_rows: Sequence[Example], held_out_rows: Sequence[Example]) -> Callable[[list[Example]], list[Example]]:
    """``snapshot.create``'s rule for augmented rows, for rows made after the snapshot: drop a new row
    whose intent group, computed over the snapshot and the new rows together, is a held-out group.

    The writers never read held-out rows; this is the split machinery's own check, needed because
    ``trainer.grouping`` joins typo neighbours across the whole data ("sunise" joins "sunset" and
    "sunrise"), which no hash of one prompt can foresee.
    """
    def screen(added: list[Example]) -> list[Example]:
        groups = IntentGroups([r.prompt_norm for r in (*train_rows, *held_out_rows, *added)])
        held = {groups.label(r.prompt_norm) for r in held_out_rows}
        return [r for r in added if groups.label(r.prompt_norm) not in held]
    return screen


def teacher_labelled_rows(rows: Sequence[Example], settings: Settings, requests: Sequence[str], *, origin: str,
                          label_source: str, taken: set[str] | None = None) -> list[Example]:
    """New training rows for ``requests`` (texts no row has yet), labelled by the offline teacher at
    temperature 0 and screened like every writer's rows: a request is kept only if its intent key
    hashes to the train split and is not pinned (``safe_for_train``), the teacher's answer is not
    ``{}`` (nothing the tools can do: the traffic already teaches that), and its intent group,
    computed over ``rows`` and the new rows together, is not held out (``held_out_screen``).
    Used by ``trainer/pool_rows.py`` and ``trainer/grammar_rows.py``.
    """
    from teacher.offline import OfflineTeacher

    if not rows or not requests:
        return []
    train, held_out = train_and_held_out(rows, settings)
    safe = safe_for_train(settings)
    taken = set(taken or ()) | {r.prompt_norm for r in rows}
    wanted: dict[str, str] = {}  # prompt_norm -> request: one row per distinct request
    for text in requests:
        norm = normalise_prompt(text)
        if norm and norm not in taken and safe(norm, None):
            wanted.setdefault(norm, text)
    if not wanted:
        return []
    labels = OfflineTeacher().label_sync(list(wanted.values()))
    made = [make_example(lab.prompt, lab.edit, augmented=True, origin=origin, label_source=label_source)
            for lab in labels if lab.ok and lab.edit is not None and lab.edit.canonical_json() != "{}"]
    return held_out_screen(train, held_out)(made)


def augment_round(student: Any, train: list[Example], val: list[Example], settings: Settings, *,
                  make_student: Callable[[], Any], seed: int = 0, paraphrase_per_row: int = 1,
                  per_prompt: int = 6, writer: str = "neighbours", threshold: float = 0.75,
                  neighbours: LookNeighbours | None = None,
                  screen: Callable[[list[Example]], list[Example]] | None = None) -> tuple[Any, list[Example], Any]:
    """The paper's RQ2 loop: find the student's validation mistakes, add teacher-labelled neighbour
    intents (+ cheap paraphrases of the training rows), and retrain a fresh student on the union.

    ``screen`` (optional) sees the new rows before training and returns those to keep: where the
    caller holds the whole snapshot, it drops any row whose intent group is held out, as
    ``snapshot.create`` does for augmented rows (``benchmarks/bench_trainer_rq2.py`` counts them).
    ``neighbours``: the offline writer to use (its neighbourhood sizes), default ``LookNeighbours()``.
    """
    extra = targeted(student, train, val, settings, per_prompt=per_prompt, threshold=threshold, seed=seed,
                     writer=writer, neighbours=neighbours)
    taken = {r.prompt_norm for r in (*train, *val, *extra)}
    cheap = paraphrases(train, paraphrase_per_row, settings, seed, taken) if paraphrase_per_row else []
    added = [*extra, *cheap]
    kept = screen(added) if screen is not None else added
    bigger = [*train, *kept]
    fresh = make_student()
    report = fresh.fit(bigger, val)
    n_extra = sum(r.label_source == "teacher_augment" for r in kept)
    report.notes.append(f"augment_round: +{n_extra} teacher-labelled neighbour intents, "
                        f"+{len(kept) - n_extra} paraphrases ({len(added) - len(kept)} screened out)")
    return fresh, bigger, report
