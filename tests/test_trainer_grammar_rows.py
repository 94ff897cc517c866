"""Grammar rows: explicit requests from the simulator's grammar, with the teacher's labels, in train only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from foundation.settings import Settings
from teacher.offline import OfflineTeacher
from tests.look_traffic import assert_train_only, look_traffic
from trainer.data import Example
from trainer.grammar_rows import LABEL_SOURCE, ORIGIN, grammar_prompts, grammar_rows


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> list[Example]:
    return look_traffic(tmp_path_factory.mktemp("cache"))


def test_grammar_requests_train_with_the_teachers_labels_and_never_join_a_held_out_group(
        settings: Settings, traffic: list[Example]) -> None:
    made = grammar_rows(traffic, settings, n=300, seed=3)
    assert 100 < len(made) <= 300  # a few are dropped: repeats, {} answers, held-out hashes
    assert all(r.augmented and r.label_source == LABEL_SOURCE and r.origin == ORIGIN for r in made)
    assert {r.prompt for r in made} <= set(grammar_prompts(300, seed=3))
    # The label is the offline teacher's reading of the words, not the grammar's hidden meaning.
    teacher = {lab.prompt: lab.edit for lab in OfflineTeacher().label_sync([r.prompt for r in made])}
    assert all(json.loads(r.edit) == teacher[r.prompt].canonical_dict() for r in made)
    assert all(json.loads(r.edit) for r in made)
    assert_train_only(settings, traffic, made, LABEL_SOURCE)

def test_grammar_draw_is_seeded_and_bounded(settings: Settings, traffic: list[Example]) -> None:
    assert grammar_prompts(20, seed=0) == grammar_prompts(20, seed=0) != grammar_prompts(20, seed=1)
    assert len(grammar_rows(traffic, settings, n=5)) <= 5
    assert grammar_rows(traffic, settings, n=0) == [] and grammar_rows([], settings, n=10) == []


def test_train_adds_grammar_rows_unless_turned_off(settings: Settings, traffic: list[Example], tmp_path: Path) -> None:
    from trainer.config import TrainConfig
    from trainer.train import resolve_snapshot

    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"prompt": r.prompt, "edit": json.loads(r.edit)}) + "\n" for r in traffic),
                    encoding="utf-8")
    common = {"input": str(data), "contrastive": False, "library_rows": False, "pool_rows": 0}
    assert TrainConfig().grammar_rows > 0
    snap = resolve_snapshot(settings, TrainConfig(**common))  # the default draws from the grammar
    assert any(r.label_source == LABEL_SOURCE for r in snap.rows("train"))
    for off in (TrainConfig(**common, grammar_rows=0), TrainConfig(**common, auto_augment=False)):
        assert not any(r.label_source == LABEL_SOURCE for r in resolve_snapshot(settings, off).rows("train"))
