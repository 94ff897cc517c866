"""The demo report's honest-evaluation section, built from a real warehouse and real renders."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from foundation.settings import Settings
from schemas.edit import Edit
from schemas.validation import validate_edit
from toneflow.demo_report import HONEST_COLUMNS, honest_rows, honest_section
from trainer import registry
from trainer.data import make_example
from trainer.evaluate import evaluate_student
from trainer.requests import BUILTIN
from trainer.runs import write_warehouse_rows
from warehouse.catalog import connect

WARM = {"adjust": {"temperature": 40}}
COOL = {"adjust": {"temperature": -40}}


class FixedStudent:
    version = "v000001"

    def __init__(self, edit: dict) -> None:
        self.edit = validate_edit(edit)

    def predict(self, prompts: list[str]) -> list[Edit]:
        return [self.edit] * len(prompts)


@pytest.fixture
def honest_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"real_requests_dir": tmp_path / "no-shared-set"})


def test_honest_rows_and_section(honest_settings: Settings) -> None:
    settings = honest_settings
    train = [make_example("sunset glow", WARM), make_example("arctic", COOL)]
    test = [make_example("golden hour", WARM), make_example("golden hour please", WARM), make_example("ice", COOL)]
    student = FixedStudent(WARM)
    result = evaluate_student(student, test, train_rows=train, requests=BUILTIN)
    meta = {"student": "minilm", "snapshot": "s-x", "parent": None, "train_rows": 2, "seed": 0, "config": {},
            "fit": {"seconds": 1.0, "steps": 1, "epochs": 1}, "trained_at": time.time(), "test_set": "T"}
    write_warehouse_rows(settings, {"version": "v000001", "promoted": True}, meta, result)
    registry.record_eval(settings, "v000001", "T", result.record())
    rows = honest_rows(connect(settings), settings)
    assert len(rows) == 1 and len(rows[0]) == len(HONEST_COLUMNS)
    name, n, overall, balanced, seen, unseen, delta_e, agreement, requests = rows[0]
    assert name == "toneflow v000001" and n == 3 and overall == pytest.approx(result.overall)
    # two intent groups ("golden hour" twice, "ice"): each counts once beside the row-weighted overall
    assert balanced == pytest.approx(result.group_balanced) and balanced != pytest.approx(overall)
    # "sunset glow" trains the golden-hour look under another name, so both golden-hour rows are seen
    # looks in new wording; the teacher reads "ice" as frosty morning, which no training row asks for
    # every reference uses adjust alone, so a perfect model scores 1/3 on each subset (a tool no
    # reference uses has F1 0 by the paper's definition); the table says so beside each overall
    assert result.ceilings() == pytest.approx({"All": 1 / 3, "seen_looks": 1 / 3, "unseen_looks": 1 / 3})
    assert seen == f"{result.subsets['seen_looks'].overall:.3f} (n=2; a perfect model: 0.333)"
    assert unseen == f"{result.subsets['unseen_looks'].overall:.3f} (n=1; a perfect model: 0.333)"
    rendered = result.rendered_summary()["All"]
    assert delta_e == pytest.approx(rendered["delta_e"]) and delta_e > 0  # "ice" is cool, the student warm
    assert agreement == pytest.approx(rendered["direction_agreement"]) and agreement < 1
    assert requests == pytest.approx(result.requests.accuracy)
    text = "\n".join(honest_section(connect(settings), settings, student))
    assert "the built-in requests (shared set absent)" in text
    assert "| student v000001 |" in text and "| offline teacher |" in text
    assert f"| {len(BUILTIN)} |" in text


def test_honest_section_without_a_model(honest_settings: Settings) -> None:
    text = "\n".join(honest_section(connect(honest_settings), honest_settings))
    assert "## Honest evaluation" in text and "| offline teacher |" not in text  # nothing trained: no rows


def test_augmented_section_counts_each_runs_augmented_rows(honest_settings: Settings) -> None:
    from toneflow.demo_report import augmented_section
    from trainer import snapshot

    settings = honest_settings
    rows = [make_example(f"look number {i}", WARM) for i in range(40)]
    extra = [make_example(f"made up look {i}", COOL, augmented=True, origin="teacher library: x",
                          label_source="library") for i in range(5)]
    extra += [make_example("darker please", COOL, augmented=True, origin="brighter please",
                           label_source="contrastive_flip")]
    snap = snapshot.create(settings, rows, policy="p", source={}, augmented=extra)
    kept = [r for r in snap.rows("train") if r.augmented]
    assert kept  # the section has something to count only if some survived the held-out screen
    result = evaluate_student(FixedStudent(WARM), rows[:3], train_rows=rows[3:], requests=BUILTIN)
    meta = {"student": "minilm", "snapshot": snap.id, "parent": None, "train_rows": len(snap.rows("train")),
            "seed": 0, "config": {}, "fit": {"seconds": 1.0, "steps": 1, "epochs": 1}, "trained_at": time.time(),
            "test_set": "T"}
    write_warehouse_rows(settings, {"version": "v000001", "promoted": True}, meta, result)
    text = "\n".join(augmented_section(settings, connect(settings)))
    library = sum(r.label_source == "library" for r in kept)
    assert f"| v000001 | library | {library} | {len(snap.rows('train'))} |" in text
    assert ("contrastive_flip" in text) == any(r.label_source == "contrastive_flip" for r in kept)
    shutil.rmtree(snapshot.snapshots_dir(settings) / snap.id)
    assert augmented_section(settings, connect(settings)) == []  # the snapshot is gone: nothing to count
