"""Traffic that the augmentation writers (look library, real-request pool) add to, in tests."""

from __future__ import annotations

from pathlib import Path

from streams.vocabulary import INTENTS
from teacher.offline import OfflineTeacher
from trainer.data import Example, make_example

# The demo's most popular look, in the wordings its traffic uses: its intent group hashes to test.
GOLDEN = ("golden hour", "golden hour please", "make it golden hour", "a bit golden hour", "goldne hour",
          "can you make this golden hour")


def look_traffic(cache_dir: Path) -> list[Example]:
    """Offline-teacher-labelled requests for the simulator's looks, ``GOLDEN`` among them."""
    teacher = OfflineTeacher(cache_dir=cache_dir)
    prompts = [*GOLDEN, *INTENTS[1:], *(f"make it {x}" for x in INTENTS[1:40])]
    return [make_example(lab.prompt, lab.edit.canonical_json()) for lab in teacher.label_sync(prompts)
            if lab.edit is not None]
