"""`toneflow train` end to end on tiny data: snapshot → fit → eval → register → gate → promote → serve."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from foundation.settings import Settings
from trainer import registry
from trainer.config import TrainConfig
from trainer.train import main

LOOKS = {
    "golden hour": {"adjust": {"temperature": 30, "highlights": 20}, "filter": {"name": "warm_GoldenHour", "intensity": 60}},
    "film noir": {"adjust": {"contrast": 40, "saturation": -100}, "filter": {"name": "mono_Noir", "intensity": 80}},
    "cool morning": {"adjust": {"temperature": -25, "exposure": 10}},
    "lush greens": {"selective_adjust": {"green": {"saturation": 30, "luminance": 10}}},
}
FRAMES = ("{p}", "make it {p}", "{p} please", "give me {p}", "{p} look", "{p} vibe", "i want {p}", "go for {p}",
          "{p} style", "a bit of {p}", "{p} feel", "try {p}")


def _write(path: Path, frames: tuple[str, ...]) -> Path:
    rows = [{"prompt": f.format(p=p), "edit": e, "exporters": 1 + i % 6}
            for p, e in LOOKS.items() for i, f in enumerate(frames)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _cfg(**kw: object) -> TrainConfig:
    # A frozen encoder trained for seconds: all 6 layers, whose pretrained sentence features carry a
    # look's direction without fine-tuning; the 2-layer default (trainer/config.py DEPTH_RECIPE)
    # learns it in its LoRA epochs, and with the heads alone here moved "cool morning" warmer.
    base = {"finetune": "frozen", "epochs": 1, "progress": False, "auto_augment": False, "layers": 0}
    return TrainConfig(**{**base, **kw})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict, dict, Path]:
    data = tmp_path_factory.mktemp("train")
    settings = Settings(data_dir=data / "data", test_fraction=0.2, val_fraction=0.2)
    first = main(_cfg(input=str(_write(data / "a.jsonl", FRAMES[:8]))), settings)
    second = main(_cfg(input=str(_write(data / "b.jsonl", FRAMES)), incremental=True, trigger_id="t-1"), settings)
    return settings, first, second, data


def test_first_model_is_registered_and_promoted(trained) -> None:
    settings, first, _, _ = trained
    assert first["version"] == "v000001" and first["promoted"] and first["student"] == "minilm"
    m = registry.manifest(settings, "v000001")
    assert m["snapshot"] == first["snapshot"] and m["parent"] is None and m["test_set"] == first["test_set"]
    assert m["metrics"]["overall"] == pytest.approx(first["overall"])
    report = registry.model_path(settings, "v000001") / "report"
    assert {p.name for p in report.iterdir()} >= {"report.md", "tools.png", "param_error.png", "filter_confusion.png"}
    assert "FlanT5-base (paper)" in first["table"]


def test_the_job_says_where_its_time_went(trained) -> None:
    from trainer.train import timing_line

    settings, first, _, _ = trained
    timings = first["timings"]
    assert list(timings) == ["snapshot", "load", "fit", "eval", "register", "gate + export", "warehouse"]
    assert sum(timings.values()) == pytest.approx(first["job_seconds"], abs=1e-6)
    assert timings["fit"] >= first["fit_seconds"] > 0
    assert list(first["fit_phases"]) == ["cache", "heads"]  # frozen encoder: phase 1 only
    assert registry.manifest(settings, "v000001")["fit"]["phases"] == first["fit_phases"]
    assert first["threads"] >= 1 and registry.manifest(settings, "v000001")["threads"] == first["threads"]
    line = timing_line(first)
    assert "CPU thread(s)" in line
    assert line.startswith("job ") and "fit " in line and "(cache " in line and "gate + export" in line


def test_incremental_run_continues_from_current_with_replay(trained) -> None:
    settings, first, second, _ = trained
    assert second["version"] == "v000002"
    m = registry.manifest(settings, "v000002")
    assert m["parent"] == "v000001" and m["config"]["incremental"]
    # the gate compared both models on the same test set and followed its rule
    decision = registry.decisions(settings, "v000002")[-1]
    criteria = {c["criterion"]: c for c in decision["criteria"]}
    assert criteria["overall"]["candidate"] == pytest.approx(second["overall"])
    assert criteria["overall"]["champion"] == pytest.approx(second["current_overall"])
    assert set(criteria) == {"overall", "rendered_delta_e", "request_accuracy"}
    assert second["promoted"] == decision["promoted"] == all(c["passed"] is not False for c in criteria.values())
    if second["overall"] < second["current_overall"] - settings.promote_margin:
        assert not second["promoted"] and decision["decided_by"] == "overall"
    assert registry.read_eval(settings, "v000001", second["test_set"]) is not None


def test_same_trigger_is_not_trained_twice(trained) -> None:
    settings, _, _, data = trained
    again = main(_cfg(input=str(data / "b.jsonl"), incremental=True, trigger_id="t-1"), settings)
    assert again["skipped"] and registry.version_names(settings) == ["v000001", "v000002"]


def test_load_student_is_cached_and_hot_reloads(trained) -> None:
    settings, *_ = trained
    registry.promote(settings, "v000001", force=True)
    a = registry.load_student(settings)
    assert registry.load_student(settings) is a and a.version == "v000001"
    registry.promote(settings, "v000002", force=True)
    b = registry.load_student(settings)
    assert b is not a and b.version == "v000002"
    # "golden hour" is a test-split intent group (all its wordings), so ask for a trained look.
    edit = b.predict(["cool morning please"])[0]
    assert edit.adjust is not None and edit.adjust.temperature < 0 and edit.filter is None


def test_damaged_current_falls_back_to_previous_champion(trained, tmp_path: Path) -> None:
    import shutil

    settings, *_ = trained
    copy = Settings(data_dir=tmp_path / "data")
    shutil.copytree(settings.data_path, copy.data_path)
    registry.promote(copy, "v000001", force=True)
    registry.promote(copy, "v000002", force=True)
    (registry.model_path(copy, "v000002") / "heads.safetensors").write_bytes(b"garbage")
    student = registry.load_student(copy)
    assert student.version == "v000001"


def test_cli_models_and_eval(trained) -> None:
    settings, first, *_ = trained
    env = {**os.environ, "TONEFLOW_DATA_DIR": str(settings.data_dir), "TONEFLOW_TEST_FRACTION": "0.2",
           "TONEFLOW_VAL_FRACTION": "0.2"}
    run = lambda *a: subprocess.run([sys.executable, "-m", "toneflow", *a], env=env, capture_output=True,  # noqa: E731
                                    text=True, timeout=300)
    listed = run("models", "list")
    assert listed.returncode == 0 and "v000001" in listed.stdout and "v000002" in listed.stdout
    ev = run("eval", "--model", "v000001", "--snapshot", first["snapshot"], "--json")
    assert ev.returncode == 0, ev.stderr
    got = json.loads(ev.stdout)
    # the paper's numbers, the test's look subset (golden hour's edit labels no training row: unseen),
    # the rendered-look agreement and the real requests
    assert set(got) == {"adjust", "selective_adjust", "filter", "overall", "group_balanced_overall", "n", "unseen_looks",
                        "rendered", "requests"}
    assert got["unseen_looks"]["n"] == got["n"] and got["unseen_looks"]["overall"] == pytest.approx(got["overall"])
    assert got["rendered"]["delta_e"] > 0 and 0 <= got["rendered"]["direction_agreement"] <= 1
    assert got["requests"]["n"] > 0 and got["requests"]["met"] <= got["requests"]["n"]
    assert got["overall"] == pytest.approx(first["overall"])  # same model, same test split, same code
    rolled = run("models", "rollback", "--to", "v000001")
    assert rolled.returncode == 0 and registry.resolve(settings) == "v000001"
    bad = run("models", "promote", "v000042")
    assert bad.returncode != 0 and "no model 'v000042'" in bad.stderr
