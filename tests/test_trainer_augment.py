"""RQ2 augmentation around validation mistakes: what the offline writer writes, how much, and that it
never recreates a held-out intent (real offline teacher, real snapshot; the student is a stand-in
that gets every validation row wrong, so every row is a mistake)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from foundation.settings import Settings
from schemas.edit import Edit
from schemas.text import normalise_prompt
from trainer import snapshot
from trainer.augment import (
    LookNeighbours,
    Mistake,
    augment_round,
    held_out_screen,
    mistake_budget,
    targeted,
)
from trainer.data import Example, make_example
from trainer.grouping import IntentGroups

WARM = json.dumps({"adjust": {"temperature": 30}}, separators=(",", ":"))


class _WrongStudent:
    """Predicts {} for every prompt (every labelled validation row is a mistake); records what it is fitted on."""

    def __init__(self) -> None:
        self.fitted: list[Example] = []

    def predict(self, prompts: list[str]) -> list[Edit]:
        return [Edit() for _ in prompts]

    def fit(self, train: list[Example], val: list[Example]) -> object:
        from trainer.students.base import FitReport

        self.fitted = list(train)
        return FitReport()


@pytest.fixture(scope="module")
def neighbours() -> LookNeighbours:
    return LookNeighbours()


def test_budget_grows_with_how_wrong_the_mistake_is() -> None:
    budgets = [mistake_budget(score, 10, 0.75) for score in (0.74, 0.5, 0.25, 0.0)]
    assert budgets == sorted(budgets) and budgets[0] < budgets[-1]
    assert budgets[0] == 5 and budgets[-1] == 20  # half the base just under the threshold, twice it at 0


def test_neighbourhood_is_the_looks_the_teacher_reads_and_their_neighbours(neighbours: LookNeighbours) -> None:
    (looks, clauses), = neighbours.neighbourhoods(["make it sunset glow"])
    names = [neighbours.library.looks[i].name for i in looks]
    read = [name for m in neighbours.teacher.read(["make it sunset glow"])[0].matches for name, _ in m.looks]
    read = list(dict.fromkeys(read))
    assert names[:len(read)] == read and len(names) > len(read)  # what it means first, then its neighbours
    assert clauses == ["sunset glow"]
    written = neighbours.write([Mistake("make it sunset glow", 0.1)], [30], ["noir", "moody forest"],
                               random.Random(0))
    assert len(written) == 30 and all(origin == "make it sunset glow" for _, origin, _ in written)
    pool = {normalise_prompt(p) for i in looks for p in neighbours.library.looks[i].phrases}
    clean = [normalise_prompt(clean or text) for text, _, clean in written]
    assert sum(any(p in text for p in pool) for text in clean) == len(clean)
    typos = [(text, clean) for text, _, clean in written if clean is not None]
    assert all(text != clean for text, clean in typos)


def test_screen_drops_a_row_that_a_typo_joins_to_a_held_out_intent() -> None:
    # "sunise" is one slip from both "sunrise" and "sunset", so grouping puts all three in one intent.
    train = [make_example("golden hour", WARM)]
    held_out = [make_example("sunrise", WARM), make_example("sunise", WARM)]
    added = [make_example("slightly sunset", WARM, augmented=True), make_example("moody forest", WARM, augmented=True)]
    kept = held_out_screen(train, held_out)(added)
    assert [r.prompt for r in kept] == ["moody forest"]


def _snapshot(settings: Settings, tmp_path: Path) -> snapshot.Snapshot:
    from streams.simulator import simulate_dataset
    from trainer.labels import apply_policy
    from trainer.sources import from_file

    data = simulate_dataset(tmp_path / "sim.jsonl", 1500, seed=3)
    cands, served = from_file(data)
    return snapshot.create(settings, apply_policy(cands, served=served), policy="export_rate",
                           source={"kind": "file", "path": str(data)})


@pytest.fixture(scope="module")
def wide_neighbours(neighbours: LookNeighbours) -> LookNeighbours:
    """The writer with twice the neighbourhood (``bench_trainer_rq2.py --by-wording 8 --by-edit 4``)."""
    return LookNeighbours(neighbours.teacher, by_wording=8, by_edit=4)


def test_a_wider_neighbourhood_writes_around_more_looks(neighbours: LookNeighbours,
                                                        wide_neighbours: LookNeighbours) -> None:
    (narrow, _), = neighbours.neighbourhoods(["make it sunset glow"])
    (wide, _), = wide_neighbours.neighbourhoods(["make it sunset glow"])
    assert set(narrow) < set(wide)


@pytest.mark.parametrize("wide", [False, True], ids=["default", "wide"])
def test_augmented_rows_share_no_intent_with_the_test_split(settings: Settings, tmp_path: Path,
                                                           neighbours: LookNeighbours,
                                                           wide_neighbours: LookNeighbours, wide: bool) -> None:
    if wide:
        neighbours = wide_neighbours
    snap = _snapshot(settings, tmp_path)
    train_all, val_all, test = snap.rows("train"), snap.rows("validation"), snap.rows("test")
    assert test and val_all
    rng = random.Random(0)
    train, val = rng.sample(train_all, 200), rng.sample(val_all, min(40, len(val_all)))
    fresh = _WrongStudent()
    screen = held_out_screen(train_all, [*val_all, *test])
    # The writer alone (no screen) is already honest in all but typo-joined corner cases ...
    written = targeted(_WrongStudent(), train, val, settings, per_prompt=10, seed=0, neighbours=neighbours)
    assert len(written) >= 5 * len(val)
    assert all(snapshot.split_of(r.prompt_norm, settings.test_fraction, settings.val_fraction) == "train"
               for r in written)
    # ... and the round as a caller with the snapshot runs it leaves none at all.
    student, bigger, report = augment_round(_WrongStudent(), train, val, settings, make_student=lambda: fresh,
                                            per_prompt=10, seed=0, screen=screen, neighbours=neighbours)
    # A second round (bench_trainer_rq2.py --rounds 2) writes around the retrained student's mistakes and
    # grows the grown set again: its rows go through the same rules.
    once = len(bigger)
    second = _WrongStudent()
    student, bigger, _ = augment_round(fresh, bigger, val, settings, make_student=lambda: second,
                                       per_prompt=10, seed=1, screen=screen, neighbours=neighbours)
    assert student is second and len(bigger) > once and second.fitted == bigger
    fresh = second
    added = bigger[len(train):]
    assert student is fresh and fresh.fitted == bigger and "screened out" in report.notes[0]
    groups = IntentGroups([r.prompt_norm for r in (*train_all, *val_all, *test, *added)])
    test_groups = {groups.label(r.prompt_norm) for r in test}
    val_groups = {groups.label(r.prompt_norm) for r in val_all}
    assert not [r.prompt for r in added if groups.label(r.prompt_norm) in test_groups | val_groups]
    assert not {r.prompt_norm for r in added} & {r.prompt_norm for r in (*test, *val_all)}
    # Marked as augmented with their origin: teacher rows name the validation mistake they came from.
    val_prompts = {r.prompt for r in val}
    teacher_rows = [r for r in added if r.label_source == "teacher_augment"]
    assert len(teacher_rows) >= 5 * len(val) and all(r.augmented for r in added)
    assert all(r.origin in val_prompts for r in teacher_rows)
    # Labels are the teacher's own reading of the new request, never copied from a held-out row.
    from teacher.offline import OfflineTeacher

    sample = teacher_rows[:40]
    relabelled = OfflineTeacher().label_sync([r.prompt for r in sample])
    assert [r.edit for r in sample] == [lab.edit.canonical_json() for lab in relabelled if lab.edit is not None]


def test_train_with_augment_trains_on_the_screened_rows(tmp_path: Path) -> None:
    """`toneflow train --augment` end to end on tiny data: one RQ2 round, nothing held out trained on."""
    from trainer import registry
    from trainer.config import TrainConfig
    from trainer.train import main

    looks = {"golden hour": {"adjust": {"temperature": 30}}, "film noir": {"adjust": {"saturation": -100}},
             "cool morning": {"adjust": {"temperature": -25}}, "lush greens": {"adjust": {"vibrance": 30}},
             "moody forest": {"adjust": {"contrast": 30}}, "soft pastel": {"adjust": {"contrast": -20}}}
    frames = ("{p}", "make it {p}", "{p} please", "give me {p}", "{p} look", "{p} vibe")
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"prompt": f.format(p=p), "edit": e, "exporters": 1}) + "\n"
                            for p, e in looks.items() for f in frames))
    settings = Settings(data_dir=tmp_path / "data", test_fraction=0.2, val_fraction=0.2)
    out = main(TrainConfig(input=str(data), finetune="frozen", epochs=1, progress=False, auto_augment=False,
                           contrastive=False, augment=True), settings)
    notes = registry.manifest(settings, out["version"])["fit"]["notes"]
    assert any(n.startswith("augment_round: +") and "screened out" in n for n in notes)
    assert out["train_rows"] > len(snapshot.load(settings, out["snapshot"]).rows("train"))

