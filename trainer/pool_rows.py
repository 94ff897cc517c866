"""Teacher-labelled real requests from the shared pool, in training.

Why: the student answers real people, and real people do not talk like the simulator. The demo's
traffic carries a quarter of its prompts from the real-request pool (``streams/simulator.py``), a
few hundred training rows, while the pool (``<real_requests_dir>/pool.txt``, read at run time and
never copied into the repository) holds thousands of requests in real users' words: typos,
run-ons, "the image is too dark so brighten it". The paper's augmentation is new requests labelled
by the teacher (``trainer/augment.py``); these are requests that real users wrote, labelled the
same way (the offline teacher, temperature 0; an LLM teacher would be paid per request), so the
student learns the teacher's reading of real wording instead of only the simulator's.

``pool_rows`` draws up to ``n`` requests of the pool (a seeded sample), has the offline teacher label
them, and marks them ``augmented=True`` with ``label_source="pool"`` and ``origin="real-request
pool"``. A request the teacher answers with ``{}`` (nothing the tools can do: "remove the dog") is
not added: the traffic already teaches that, and the pool is mostly global edits.

Leakage guard, as for ``trainer/library_rows.py``: a request is kept only if its intent key hashes
to the train split and is not in the pinned benchmark, and only if its intent group, computed over
the snapshot's rows and the new ones together, is not a validation, test or pinned group
(``trainer.augment.held_out_screen``). The shared dev set (``dev.tsv``) that measures real-request
direction accuracy shares no line with the pool (its README), and is never read here.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from foundation.settings import Settings
from streams.vocabulary import shared_pool
from trainer.augment import teacher_labelled_rows
from trainer.data import Example

LABEL_SOURCE = "pool"
ORIGIN = "real-request pool"


def pool_prompts(settings: Settings, n: int, seed: int = 0) -> list[str]:
    """Up to ``n`` requests of the shared pool, a seeded sample in pool order; [] when the pool file
    is absent (the simulator's built-in stand-in list is not real users' words)."""
    pool = shared_pool(settings.real_requests_dir)
    if n <= 0 or not pool:
        return []
    picked = sorted(random.Random(f"{seed}:pool").sample(range(len(pool)), min(n, len(pool))))
    return [pool[i] for i in picked]


def pool_rows(rows: Sequence[Example], settings: Settings, *, n: int, seed: int = 0,
              taken: set[str] | None = None) -> list[Example]:
    """Offline-teacher-labelled pool requests (at most ``n``) whose intent group trains."""
    if not rows or n <= 0:
        return []  # nothing to snapshot: snapshot.create says so, no need to read the pool first
    return teacher_labelled_rows(rows, settings, pool_prompts(settings, n, seed), origin=ORIGIN,
                                 label_source=LABEL_SOURCE, taken=taken)
