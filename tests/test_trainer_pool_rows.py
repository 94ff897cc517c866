"""Real-request pool rows: the teacher's reading of real wording in train, never in a held-out group.

The pool here is a file of our own requests in a temp directory, written the way real users write
(run-ons, typos, lower case); the shared pool is never copied into the repository.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from foundation.settings import Settings
from tests.look_traffic import assert_train_only, look_traffic
from trainer.data import Example, make_example
from trainer.grouping import IntentGroups
from trainer.pool_rows import LABEL_SOURCE, ORIGIN, pool_prompts, pool_rows

OWN_POOL = (
    "the photo is way too dark, brighten it up", "lower the contrast a little bit", "make the colours pop more",
    "its too yellow make it cooler", "increase the exposure and reduce the saturation slightly",
    "darken the whole image", "remove the person on the left",  # nothing the tools can do: {}
    "make the sky more blue", "less contrast please the shadows are crushed", "warm it up a lot",
    "brighten the shadows", "the image looks washed out, add some saturation", "reduce brightness by 20%",
    "golden hour please",  # a held-out wording of the traffic: never added
    "make it look like a sunny summer day", "tone down the highlights", "more vibrant colors",
)


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> list[Example]:
    return look_traffic(tmp_path_factory.mktemp("cache"))


@pytest.fixture
def pooled(settings: Settings, tmp_path: Path) -> Settings:
    pool = tmp_path / "pool"
    pool.mkdir()
    (pool / "pool.txt").write_text("\n".join(OWN_POOL) + "\n", encoding="utf-8")
    return settings.model_copy(update={"real_requests_dir": pool})


def test_pool_requests_train_with_the_teachers_labels_and_never_join_a_held_out_group(
        pooled: Settings, traffic: list[Example]) -> None:
    groups = IntentGroups([r.prompt_norm for r in traffic])
    split = {r.prompt_norm: groups.split(r.prompt_norm, pooled.test_fraction, pooled.val_fraction) for r in traffic}
    assert split[make_example("golden hour please", "{}").prompt_norm] == "test"  # the case that matters
    made = pool_rows(traffic, pooled, n=len(OWN_POOL))
    assert made and all(r.augmented and r.label_source == LABEL_SOURCE and r.origin == ORIGIN for r in made)
    assert {r.prompt for r in made} <= set(OWN_POOL)
    assert not {r.prompt_norm for r in made} & set(split)  # only requests the traffic did not have
    assert "golden hour please" not in {r.prompt for r in made}
    assert "remove the person on the left" not in {r.prompt for r in made}  # {}: nothing to teach here
    assert all(json.loads(r.edit) for r in made)
    # The teacher's reading: "darken the whole image" lowers the light.
    dark = next(r for r in made if r.prompt == "darken the whole image")
    adjust = json.loads(dark.edit)["adjust"]
    assert adjust.get("exposure", 0) + adjust.get("brightness", 0) < 0
    assert_train_only(pooled, traffic, made, LABEL_SOURCE)

def test_pool_draw_is_bounded_seeded_and_needs_the_shared_file(pooled: Settings, settings: Settings,
                                                              traffic: list[Example]) -> None:
    first = pool_prompts(pooled, 5, seed=0)
    assert len(first) == 5 and first == pool_prompts(pooled, 5, seed=0) and set(first) <= set(OWN_POOL)
    assert first != pool_prompts(pooled, 5, seed=1)
    assert len(pool_rows(traffic, pooled, n=3)) <= 3
    assert pool_rows(traffic, pooled, n=0) == [] and pool_rows([], pooled, n=10) == []
    # Without pool.txt the simulator falls back to a built-in list; that is not real users' words.
    absent = settings.model_copy(update={"real_requests_dir": Path(settings.data_dir) / "no-such-dir"})
    assert pool_prompts(absent, 10) == [] and pool_rows(traffic, absent, n=10) == []


def test_train_adds_pool_rows_unless_turned_off(pooled: Settings, traffic: list[Example], tmp_path: Path) -> None:
    from trainer.config import TrainConfig
    from trainer.train import resolve_snapshot

    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"prompt": r.prompt, "edit": json.loads(r.edit)}) + "\n" for r in traffic),
                    encoding="utf-8")
    common = {"input": str(data), "contrastive": False, "library_rows": False}
    snap = resolve_snapshot(pooled, TrainConfig(**common))  # the default draws from the pool
    assert TrainConfig().pool_rows > len(OWN_POOL)
    assert any(r.label_source == LABEL_SOURCE for r in snap.rows("train"))
    for off in (TrainConfig(**common, pool_rows=0), TrainConfig(**common, auto_augment=False)):
        assert not any(r.label_source == LABEL_SOURCE for r in resolve_snapshot(pooled, off).rows("train"))
