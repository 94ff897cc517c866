"""Teacher-labelled requests for the teacher's look library: every look's names, in training.

Why: the app's traffic names about a hundred look intents, Zipf-popular (``streams.vocabulary.INTENTS``),
and the split holds out whole intent groups. A held-out look then has no other wording in training,
so the student cannot know what it means: the demo's first student was tested on 80 wordings of
"golden hour" (a third of its test split: the most popular look, whose group hashes to test) and
answered them with the blue-hour filter. The offline teacher knows every look by its library names
(``teacher/looks.yaml``: "golden hour" is also "magic hour", "sunset glow", "evening sun"), as an
LLM teacher knows look names. ``library_rows`` writes ``PER_PHRASE`` requests per library phrase
(the phrase in random framings of ``streams.vocabulary.FRAMES``, all but the first with a strength
modifier), has the offline teacher (temperature 0) label them, and marks them ``augmented=True``
with ``label_source="library"`` and ``origin="teacher library: <look>"``: they are written from the
library, not around any traffic row. The simulated acceptance data
(``streams.simulator.generate_prompts``) draws from the same phrases, which is why its students
knew such looks and the demo's did not.

Leakage guard: as in ``trainer/augment.py``, a request is kept only if its intent key hashes to the
train split and is not in the pinned benchmark (so it can never become a validation or test intent
of a later snapshot); and, computing the split exactly as ``snapshot.create`` will (groups of the
snapshot's rows and the pinned benchmark), only if its intent group, computed over those rows and
the new ones together, is not a validation, test or pinned group (``trainer.augment.held_out_screen``).
The wordings of a held-out intent ("golden hour", "goldne hour") never train; other names of its
look may, and the test then measures whether the student carries a look it learned under other
names over to the held-out wording.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

from foundation.settings import Settings
from schemas.text import normalise_prompt
from streams.vocabulary import FRAMES, MODIFIERS
from trainer.augment import held_out_screen, safe_for_train, train_and_held_out
from trainer.data import Example, make_example

LABEL_SOURCE = "library"
ORIGIN_PREFIX = "teacher library: "
PER_PHRASE = 3  # requests per library phrase


def library_prompts(seed: int = 0, per_phrase: int = PER_PHRASE) -> list[tuple[str, str]]:
    """(look name, request) for every phrase of every library look, framed as users frame requests:
    the phrase in a random framing, then ``per_phrase - 1`` more with a strength modifier ("slightly",
    "very", ...: the teacher scales the look, so the student sees the look at several strengths)."""
    from teacher.library import load_library

    modifiers = [m for m in MODIFIERS if m]
    out = []
    for look in load_library().looks:
        for phrase in look.phrases:
            rng = random.Random(int(hashlib.sha256(f"{seed}:library:{phrase}".encode()).hexdigest()[:8], 16))
            out.append((look.name, rng.choice(FRAMES).format(p=phrase)))
            out += [(look.name, rng.choice(FRAMES).format(p=rng.choice(modifiers) + phrase))
                    for _ in range(per_phrase - 1)]
    return out


def library_rows(rows: Sequence[Example], settings: Settings, *, seed: int = 0, per_phrase: int = PER_PHRASE,
                 taken: set[str] | None = None) -> list[Example]:
    """Offline-teacher-labelled requests for the library's look phrases whose intent group trains."""
    from teacher.offline import OfflineTeacher

    if not rows:
        return []  # nothing to snapshot: snapshot.create says so, no need to label the library first
    train, held_out = train_and_held_out(rows, settings)
    safe = safe_for_train(settings)
    taken = set(taken or ()) | {r.prompt_norm for r in rows}
    wanted: dict[str, tuple[str, str]] = {}  # prompt_norm -> (look, request): one row per distinct request
    for look, text in library_prompts(seed, per_phrase):
        norm = normalise_prompt(text)
        if norm and norm not in taken and safe(norm, None):
            wanted.setdefault(norm, (look, text))
    if not wanted:
        return []
    labels = OfflineTeacher().label_sync([text for _, text in wanted.values()])
    made = [make_example(lab.prompt, lab.edit, augmented=True, origin=ORIGIN_PREFIX + look, label_source=LABEL_SOURCE)
            for (look, _), lab in zip(wanted.values(), labels, strict=True)
            if lab.ok and lab.edit is not None and lab.edit.canonical_json() != "{}"]
    return held_out_screen(train, held_out)(made)
