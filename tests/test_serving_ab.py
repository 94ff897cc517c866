"""Traffic plans and the statistics of the online gate: pure functions, hand-checked numbers."""

from __future__ import annotations

import json
import math

import pytest

from foundation.settings import Settings
from serving.ab import Arm, TrafficPlan, bucket, default_plan, load_plan, plan_path, save_plan
from serving.exceptions import TrafficPlanError
from serving.stats import compare, normal_cdf, wilson

PLAN = TrafficPlan("exp-1", (Arm("teacher", "teacher", 0.7), Arm("student", "student", 0.3, "current")), "teacher")


def test_assignment_is_deterministic_and_follows_the_weights() -> None:
    users = [f"user-{i}" for i in range(20_000)]
    first = [PLAN.assign(u).variant for u in users]
    again = [TrafficPlan.from_dict(json.loads(json.dumps(PLAN.to_dict()))).assign(u).variant for u in users]
    assert first == again  # same user, same arm, also after a round trip through the file format
    share = first.count("student") / len(users)
    assert abs(share - 0.3) < 0.015  # 3.3 standard errors at n=20k
    # a new salt reshuffles users; the same weights in another order keep the shares
    other = TrafficPlan("exp-2", PLAN.arms, "teacher")
    moved = sum(a != other.assign(u).variant for a, u in zip(first, users))
    assert 0.3 < moved / len(users) < 0.55  # 2 * 0.7 * 0.3 = 0.42 expected


def test_bucket_is_uniform_and_in_range() -> None:
    points = [bucket("e", str(i)) for i in range(10_000)]
    assert all(0 <= p < 1 for p in points)
    assert abs(sum(points) / len(points) - 0.5) < 0.01


def test_zero_weight_arms_never_serve() -> None:
    plan = TrafficPlan("e", (Arm("a", "teacher", 1.0), Arm("b", "student", 0.0, "v000002")), "a")
    assert {plan.assign(f"u{i}").variant for i in range(2000)} == {"a"}
    assert plan.student_models() == set()  # nothing to load for an arm that serves nobody


@pytest.mark.parametrize(("raw", "problem"), [
    ({"arms": []}, "no arms"),
    ({"arms": [{"variant": "a", "kind": "teacher", "weight": 1}, {"variant": "a", "kind": "teacher", "weight": 1}]},
     "repeat"),
    ({"arms": [{"variant": "a", "kind": "robot", "weight": 1}]}, "kind"),
    ({"arms": [{"variant": "a", "kind": "teacher", "weight": 0}]}, "positive sum"),
    ({"arms": [{"variant": "a", "kind": "teacher", "weight": 1}], "champion": "b"}, "champion"),
    ({"arms": [{"kind": "teacher", "weight": 1}]}, "expected"),
    ({"arms": [{"variant": "a", "kind": "teacher", "weight": "lots"}]}, "expected"),
])
def test_invalid_plans_say_what_is_wrong(raw: dict, problem: str) -> None:
    with pytest.raises(TrafficPlanError, match=problem):
        TrafficPlan.from_dict(raw)


def test_default_plan_and_file_round_trip(settings: Settings, tmp_path) -> None:
    from serving.testing import fake_version
    from trainer import registry

    assert [a.variant for a in default_plan(settings).arms] == ["teacher"]  # no student promoted
    registry.promote(settings, fake_version(settings))
    assert [(a.variant, a.model) for a in load_plan(settings).arms] == [("student", "current")]
    mixed = Settings(data_dir=settings.data_dir, serve_student_share=0.25)
    assert default_plan(mixed).shares() == {"teacher": 0.75, "student": 0.25}
    assert default_plan(mixed).champion == "teacher"
    save_plan(settings, PLAN)
    assert load_plan(settings) == PLAN and load_plan(settings).source == "file"
    assert not list(plan_path(settings).parent.glob(".*.tmp"))  # atomic write left no temp file
    plan_path(settings).write_text("{not json")
    with pytest.raises(TrafficPlanError, match="fix or delete it"):
        load_plan(settings)


def test_statistics_match_hand_computed_values() -> None:
    assert normal_cdf(1.959964) == pytest.approx(0.975, abs=1e-6)
    # Wilson 95% for 4/10 is [0.1682, 0.6873] (same numbers as the warehouse view test)
    low, high = wilson(4, 10)
    assert low == pytest.approx(0.1682, abs=1e-4) and high == pytest.approx(0.6873, abs=1e-4)
    # candidate 1240/2000 = .62 vs champion 1200/2000 = .60, margin .02:
    # se = sqrt(.62*.38/2000 + .6*.4/2000) = sqrt(.0002378) = .015421; z = (.02 + .02)/se = 2.5939
    c = compare(1240, 2000, 1200, 2000, margin=0.02)
    assert c.se == pytest.approx(0.015421, abs=1e-6)
    assert c.z_noninferior == pytest.approx(2.5939, abs=1e-3)
    assert c.p_noninferior == pytest.approx(0.00474, abs=1e-4)
    assert c.z_worse == pytest.approx(1.2969, abs=1e-3) and c.p_worse == pytest.approx(0.9027, abs=1e-3)
    # candidate 1000/2000 = .5: se = sqrt(.25/2000 + .24/2000) = .015652; z_worse = -.1/se = -6.389
    w = compare(1000, 2000, 1200, 2000, margin=0.02)
    assert w.z_worse == pytest.approx(-6.389, abs=1e-3) and w.p_worse < 1e-9
    assert w.p_noninferior > 0.999
    # degenerate: both arms complete every project -> not worse (se = 0, numerator = margin > 0)
    d = compare(50, 50, 80, 80, margin=0.02)
    assert d.se == 0 and math.isinf(d.z_noninferior) and d.p_noninferior == 0.0
