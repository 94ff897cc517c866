"""Library-phrase rows: a held-out look is taught under its other names, never under a held-out wording."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from foundation.settings import Settings
from teacher.library import load_library
from tests.look_traffic import GOLDEN, look_traffic
from trainer import snapshot
from trainer.data import Example, make_example
from trainer.grouping import IntentGroups
from trainer.library_rows import LABEL_SOURCE, ORIGIN_PREFIX, library_rows


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> list[Example]:
    return look_traffic(tmp_path_factory.mktemp("cache"))


def test_held_out_look_is_taught_by_its_other_names_only(settings: Settings, traffic: list[Example]) -> None:
    groups = IntentGroups([r.prompt_norm for r in traffic])
    split = {r.prompt_norm: groups.split(r.prompt_norm, settings.test_fraction, settings.val_fraction)
             for r in traffic}
    assert all(split[make_example(p, "{}").prompt_norm] == "test" for p in GOLDEN)  # the case that matters
    made = library_rows(traffic, settings)
    assert made and all(r.augmented and r.label_source == LABEL_SOURCE and r.origin.startswith(ORIGIN_PREFIX)
                        for r in made)
    assert not {r.prompt_norm for r in made} & set(split)  # only requests the traffic did not have
    # No new row falls in a held-out intent group, computed over the traffic and the new rows together.
    joint = IntentGroups([r.prompt_norm for r in (*traffic, *made)])
    held = {joint.label(n) for n, s in split.items() if s != "train"}
    assert not [r.prompt for r in made if joint.label(r.prompt_norm) in held]
    assert not [r.prompt for r in made if "golden hour" in r.prompt_norm]
    # Other names of the golden-hour look do train, with the look's edit.
    golden = next(look for look in load_library().looks if look.name == "golden hour")
    taught = [r for r in made if r.origin == ORIGIN_PREFIX + "golden hour"]
    assert taught and {json.loads(r.edit)["filter"]["name"] for r in taught} == {golden.filter[0]}
    # snapshot.create keeps them all, in train only.
    snap = snapshot.create(settings, traffic, policy="p", source={}, augmented=made)
    assert snap.manifest["augmented_dropped"] == 0
    assert sum(r.augmented for r in snap.rows("train")) == len(made)
    assert not any(r.augmented for s in ("validation", "test") for r in snap.rows(s))
    assert {r.prompt_norm for r in snap.rows("test")} == {n for n, s in split.items() if s == "test"}
    assert library_rows([], settings) == []  # no traffic, no snapshot: nothing to add


def test_train_adds_library_rows_unless_augmentation_is_off(settings: Settings, traffic: list[Example],
                                                            tmp_path: Path) -> None:
    from trainer.config import TrainConfig
    from trainer.train import resolve_snapshot

    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"prompt": r.prompt, "edit": json.loads(r.edit)}) + "\n" for r in traffic),
                    encoding="utf-8")
    snap = resolve_snapshot(settings, TrainConfig(input=str(data), contrastive=False))
    assert any(r.label_source == LABEL_SOURCE for r in snap.rows("train"))
    for cfg in (TrainConfig(input=str(data), contrastive=False, library_rows=False),
                TrainConfig(input=str(data), contrastive=False, auto_augment=False)):
        assert not any(r.label_source == LABEL_SOURCE for r in resolve_snapshot(settings, cfg).rows("train"))
