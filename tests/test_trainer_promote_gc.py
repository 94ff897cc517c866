"""``models promote`` says when serving will not follow it; stale staged models are collected at start."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from foundation.settings import Settings
from serving.ab import Arm, TrafficPlan, promotion_effect, reset_plan, save_plan
from serving.testing import fake_version
from toneflow.cli import main
from trainer import registry
from trainer.config import TrainConfig


def _promote_cli(capsys, version: str) -> str:
    assert main(["models", "promote", version, "--force"]) == 0
    return capsys.readouterr().out


def test_promote_says_why_a_pinned_plan_keeps_serving_the_old_model(settings: Settings, capsys) -> None:
    v1, v2 = fake_version(settings, "a"), fake_version(settings, "b")
    registry.promote(settings, v1)
    save_plan(settings, TrafficPlan("exp", (Arm("teacher", "teacher", 0.5), Arm("B", "student", 0.5, v1)), "teacher"))
    out = _promote_cli(capsys, v2)
    assert f"{v2}: now current" in out
    assert "serving will not change" in out and f"B -> {v1}" in out and "traffic.json" in out
    assert f"toneflow rollout start-candidate --model {v2}" in out
    assert registry.read_current(settings)["version"] == v2  # the promote itself happened


@pytest.mark.parametrize(("arms", "follows"), [
    ((Arm("teacher", "teacher", 0.5), Arm("S", "student", 0.5, "current")), True),
    ((Arm("teacher", "teacher", 0.5), Arm("S", "student", 0.5)), True),          # no model = current
    ((Arm("teacher", "teacher", 1.0), Arm("S", "student", 0.0, "current")), False),  # weight 0 serves nobody
    ((Arm("teacher", "teacher", 1.0),), False),
])
def test_promotion_effect_follows_only_live_current_arms(settings: Settings, arms, follows) -> None:
    v1 = fake_version(settings)
    save_plan(settings, TrafficPlan("exp", arms, "teacher"))
    note = promotion_effect(settings, v1)
    assert (note is None) == follows, note


def test_default_plan_with_no_student_share_is_explained(settings: Settings, capsys, monkeypatch) -> None:
    from foundation.settings import get_settings

    v1 = fake_version(settings)
    reset_plan(settings)
    monkeypatch.setenv("TONEFLOW_SERVE_STUDENT_SHARE", "0")
    get_settings.cache_clear()
    out = _promote_cli(capsys, v1)
    assert "serving will not change" in out and "TONEFLOW_SERVE_STUDENT_SHARE is 0.0" in out
    monkeypatch.delenv("TONEFLOW_SERVE_STUDENT_SHARE")
    get_settings.cache_clear()
    v2 = fake_version(settings, "b")
    out = _promote_cli(capsys, v2)
    assert f"{v2}: now current" in out and "serving will not change" not in out  # default plan follows current


def _staged_by_a_killed_process(settings: Settings) -> str:
    code = ("import os, signal; from foundation.settings import Settings; from trainer import registry; "
            f"p = registry.stage(Settings(data_dir={str(settings.data_dir)!r})); (p / 'weights.bin').write_bytes(b'x' * 1000); "
            "print(p.name, flush=True); os.kill(os.getpid(), signal.SIGKILL)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == -9, proc.stderr
    return proc.stdout.strip()


def test_promote_collects_a_killed_writers_temp_model_at_once(settings: Settings) -> None:
    dead = _staged_by_a_killed_process(settings)
    live = registry.stage(settings)  # this process is alive: its staging must stay
    foreign_new = registry.models_dir(settings) / ".tmp-12345@otherhost-abc"
    foreign_old = registry.models_dir(settings) / ".tmp-12345@otherhost-def"
    foreign_new.mkdir()
    foreign_old.mkdir()
    os.utime(foreign_old, (time.time() - 7200, time.time() - 7200))
    assert (registry.models_dir(settings) / dead).is_dir()
    registry.promote(settings, fake_version(settings))
    left = sorted(p.name for p in registry.models_dir(settings).glob(".tmp-*"))
    assert left == sorted([live.name, foreign_new.name])  # another host's fresh one may still be in use


def test_train_collects_stale_temp_models_before_it_starts(settings: Settings) -> None:
    dead = _staged_by_a_killed_process(settings)
    from trainer.exceptions import TrainerError
    from trainer.train import main as train_main

    with pytest.raises(TrainerError):  # an empty warehouse: nothing to train on, but gc ran first
        train_main(TrainConfig(), settings)
    assert not (registry.models_dir(settings) / dead).exists()
