"""Teacher-labelled explicit requests from the request grammar, in training.

Why: explicit requests ("decrease the brightness a bit and make it warmer", "contrast up by 20%")
are combinations of one to three (attribute, direction, amount) clauses, far more combinations
than the traffic shows before the first retrain: the demo's first snapshot has a few hundred
accepted ones. A student that saw few of them answers new ones only roughly. In the demo's A/B
phase the student's edits for explicit requests were close enough to what the user wanted far
less often than the teacher's, the largest gap of the three kinds of request (docs/benchmarks.md,
"Issue 12, round 14"). Distillation's usual remedy is more prompts for the teacher to answer:
these are drawn from the grammar in ``streams/vocabulary.py`` (``explicit_request``, with the
simulator's typos and framing, ``surface_form``) and labelled by the offline teacher, exactly as
the pool rows are (``trainer/pool_rows.py``), so the student learns the teacher's reading of the
words, not the grammar's hidden meaning.

They are marked ``augmented=True``, ``label_source="grammar"``, ``origin="request grammar"``, and
screened like every writer's rows (``trainer.augment.teacher_labelled_rows``): an intent key that
hashes to a held-out split, or an intent group held out for validation or test, is never added.
The real-request measure (``../shared/benchmarks/real-requests/dev.tsv``) is untouched by this:
it is people's words, not the grammar's.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from foundation.settings import Settings
from streams.vocabulary import explicit_request, surface_form
from trainer.augment import teacher_labelled_rows
from trainer.data import Example

LABEL_SOURCE = "grammar"
ORIGIN = "request grammar"


def grammar_prompts(n: int, seed: int = 0) -> list[str]:
    """``n`` explicit requests from the grammar (a seeded draw; repeats possible, dropped later)."""
    rng = random.Random(f"{seed}:grammar")
    return [surface_form(explicit_request(rng).text, rng, framed=False) for _ in range(max(0, n))]


def grammar_rows(rows: Sequence[Example], settings: Settings, *, n: int, seed: int = 0,
                 taken: set[str] | None = None) -> list[Example]:
    """Offline-teacher-labelled grammar requests (at most ``n``) whose intent group trains."""
    if not rows or n <= 0:
        return []
    return teacher_labelled_rows(rows, settings, grammar_prompts(n, seed), origin=ORIGIN,
                                 label_source=LABEL_SOURCE, taken=taken)
