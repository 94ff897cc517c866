"""Traffic that the augmentation writers (look library, real-request pool, grammar) add to, in tests."""

from __future__ import annotations

from pathlib import Path

from foundation.settings import Settings
from streams.vocabulary import INTENTS
from teacher.offline import OfflineTeacher
from trainer import snapshot
from trainer.data import Example, make_example
from trainer.grouping import IntentGroups

# The demo's most popular look, in the wordings its traffic uses: its intent group hashes to test.
GOLDEN = ("golden hour", "golden hour please", "make it golden hour", "a bit golden hour", "goldne hour",
          "can you make this golden hour")


def look_traffic(cache_dir: Path) -> list[Example]:
    """Offline-teacher-labelled requests for the simulator's looks, ``GOLDEN`` among them."""
    teacher = OfflineTeacher(cache_dir=cache_dir)
    prompts = [*GOLDEN, *INTENTS[1:], *(f"make it {x}" for x in INTENTS[1:40])]
    return [make_example(lab.prompt, lab.edit.canonical_json()) for lab in teacher.label_sync(prompts)
            if lab.edit is not None]


def assert_train_only(settings: Settings, traffic: list[Example], made: list[Example], label_source: str) -> None:
    """A writer's new rows never join a held-out intent group (computed over the traffic and the new
    rows together), and ``snapshot.create`` keeps them all, in train only, with the test split the
    traffic's own."""
    groups = IntentGroups([r.prompt_norm for r in traffic])
    split = {r.prompt_norm: groups.split(r.prompt_norm, settings.test_fraction, settings.val_fraction)
             for r in traffic}
    joint = IntentGroups([r.prompt_norm for r in (*traffic, *made)])
    held = {joint.label(n) for n, s in split.items() if s != "train"}
    assert not [r.prompt for r in made if joint.label(r.prompt_norm) in held]
    snap = snapshot.create(settings, traffic, policy="p", source={}, augmented=made)
    assert snap.manifest["augmented_dropped"] == 0
    assert sum(r.label_source == label_source for r in snap.rows("train")) == len(made)
    assert not any(r.augmented for s in ("validation", "test") for r in snap.rows(s))
    assert {r.prompt_norm for r in snap.rows("test")} == {n for n, s in split.items() if s == "test"}
