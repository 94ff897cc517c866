"""The online gate on real Parquet files: decisions with their numbers, and what each one changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from foundation.settings import Settings
from schemas.events import ExportEvent, PromptEvent, ServedBy
from serving import rollout
from serving.ab import Arm, TrafficPlan, load_plan, save_plan
from serving.exceptions import RolloutError
from serving.testing import fake_version
from trainer import registry
from warehouse import tables
from warehouse.layout import glob_pattern
from warehouse.writer import write_batch

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def _traffic(settings: Settings, variant: str, started: int, exported: int, offset: int) -> int:
    """``started`` projects served by ``variant``, the first ``exported`` of them exported."""
    served = ServedBy(kind="teacher" if variant == "teacher" else "student",
                      model="offline" if variant == "teacher" else "minilm", version="v", variant=variant)
    prompts = [tables.prompt_row(PromptEvent(event_id=f"{variant}-e{i}", project_id=f"{variant}-p{i}", user_id=f"u{i}",
                                             ts=T0 + timedelta(seconds=i), prompt="golden hour", served_by=served),
                                 tables.Source("toneflow.prompts", 0, offset + i)) for i in range(started)]
    write_batch(settings, "prompts", prompts, topic="toneflow.prompts", partition=0, first_offset=offset,
                last_offset=offset + started - 1)
    exports = [tables.export_row(ExportEvent(event_id=f"{variant}-x{i}", project_id=f"{variant}-p{i}", user_id=f"u{i}",
                                             ts=T0 + timedelta(hours=1)), tables.Source("toneflow.exports", 0, offset + i))
               for i in range(exported)]
    write_batch(settings, "exports", exports, topic="toneflow.exports", partition=0, first_offset=offset,
                last_offset=offset + exported - 1)
    return offset + started


def _recorded(settings: Settings) -> list[tuple]:
    return duckdb.connect().execute(
        "SELECT verdict, candidate_variant, candidate_n, candidate_x, champion_n, champion_x, z_noninferior, "
        f"p_worse, action FROM read_parquet('{glob_pattern(settings, rollout.TABLE)}') ORDER BY ts").fetchall()


@pytest.fixture
def gate(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", rollout_min_sample=100, rollout_margin=0.02, rollout_alpha=0.05)


def test_no_candidate_and_minimum_sample(gate: Settings) -> None:
    assert rollout.decide(gate).verdict == "no_candidate"  # teacher-only default plan
    save_plan(gate, TrafficPlan("e", (Arm("teacher", "teacher", 0.8), Arm("student", "student", 0.2, "current")),
                                "teacher"))
    offset = _traffic(gate, "teacher", 400, 240, 0)
    _traffic(gate, "student", 60, 59, offset)
    d = rollout.decide(gate)
    assert d.verdict == "keep_collecting" and "need 100 projects per arm (have 60 and 400)" in d.reason
    assert d.summary().startswith("keep_collecting: student 59/60=0.983")
    assert (d.candidate.n, d.candidate.x, d.champion.n, d.champion.x) == (60, 59, 400, 240)


def test_candidate_not_worse_is_promoted_in_plan_and_registry(gate: Settings) -> None:
    v1, v2 = fake_version(gate, "a"), fake_version(gate, "b")
    registry.promote(gate, v1)
    save_plan(gate, TrafficPlan("e", (Arm("student", "student", 1.0, "current"),), "student"))
    plan = rollout.start_candidate(gate, model=v2, share=0.2)
    assert plan.shares() == {"student": 0.8, "student-v000002": 0.2}
    assert plan.arm("student").model == v1  # the champion is pinned to what it served
    offset = _traffic(gate, "student", 2000, 1200, 0)
    _traffic(gate, "student-v000002", 2000, 1240, offset)
    d = rollout.step(gate)
    # hand-computed in test_serving_ab: z = 2.5939, p = 0.00474 < 0.05
    assert d.verdict == "promote" and d.z_noninferior == pytest.approx(2.5939, abs=1e-3)
    assert registry.resolve(gate) == v2
    after = load_plan(gate)
    assert after.champion == "student-v000002" and after.shares()["student-v000002"] == 1.0
    assert after.arm("student-v000002").model == v2
    [row] = _recorded(gate)
    assert row[:6] == ("promote", "student-v000002", 2000, 1240, 2000, 1200)
    assert "registry current -> v000002" in row[8]
    assert "z=2.59 p=0.0047" in d.summary() and "action: registry current -> v000002" in d.summary()
    assert rollout.decide(gate).verdict == "no_candidate"


def test_significantly_worse_candidate_is_rolled_back_and_never_restarted(gate: Settings) -> None:
    v1, v2 = fake_version(gate, "a"), fake_version(gate, "b")
    registry.promote(gate, v1)
    registry.promote(gate, v2, force=True)  # the trainer's offline gate already made it current
    plan = rollout.start_candidate(gate, share=0.3)  # default plan follows `current`: champion pinned to v1
    assert (plan.arm("student").model, plan.arm("student-v000002").model) == (v1, v2)
    offset = _traffic(gate, "student", 2000, 1200, 0)
    _traffic(gate, "student-v000002", 2000, 1000, offset)
    d = rollout.step(gate)
    assert d.verdict == "rollback" and d.z_worse == pytest.approx(-6.389, abs=1e-3)
    assert registry.resolve(gate) == v1
    after = load_plan(gate)
    assert after.shares() == {"student": 1.0, "student-v000002": 0.0}
    assert rollout.watch_once(gate).verdict == "no_candidate"  # v2 was tried: not started again
    assert [r[0] for r in _recorded(gate)] == ["rollback"]
    assert rollout.recent_decisions(gate)[0]["candidate_variant"] == "student-v000002"


def test_inconclusive_keeps_collecting_and_changes_nothing(gate: Settings) -> None:
    v1 = fake_version(gate)
    registry.promote(gate, v1)
    before = TrafficPlan("e", (Arm("teacher", "teacher", 0.5), Arm("student", "student", 0.5, "current")), "teacher")
    save_plan(gate, before)
    offset = _traffic(gate, "teacher", 500, 300, 0)
    _traffic(gate, "student", 500, 310, offset)  # z = 1.297, p = 0.097: not significant either way
    d = rollout.step(gate)
    assert d.verdict == "keep_collecting" and d.p_noninferior == pytest.approx(0.0973, abs=1e-3)
    assert load_plan(gate) == before and registry.resolve(gate) == v1
    assert _recorded(gate)[0][0] == "keep_collecting"


def test_start_candidate_refuses_nonsense(gate: Settings) -> None:
    v1 = fake_version(gate)
    registry.promote(gate, v1)
    with pytest.raises(RolloutError, match="between 0 and 1"):
        rollout.start_candidate(gate, share=1.5)
    with pytest.raises(RolloutError, match="only promoted model"):
        rollout.start_candidate(gate)  # v1 vs itself


def test_rollout_cli(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from toneflow.cli import main

    v1, v2 = fake_version(settings, "a"), fake_version(settings, "b")
    registry.promote(settings, v1)
    assert main(["rollout", "status"]) == 0
    assert "no_candidate" in capsys.readouterr().out
    assert main(["rollout", "start-candidate", "--model", "2", "--share", "0.1"]) == 0
    assert json.loads(capsys.readouterr().out)["arms"][1] == {"variant": "student-v000002", "kind": "student",
                                                              "weight": 0.1, "model": v2}
    assert main(["rollout", "step", "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "keep_collecting"
    assert rollout.recent_decisions(settings) == []  # a dry run records nothing
    assert main(["rollout", "step"]) == 0
    assert capsys.readouterr().out.startswith("keep_collecting: student-v000002 0/0")
    assert len(rollout.recent_decisions(settings)) == 1
    assert main(["rollout", "start-candidate", "--share", "2"]) == 2
    assert "between 0 and 1" in capsys.readouterr().err
    assert main(["rollout", "reset"]) == 0 and load_plan(settings).source == "default"
