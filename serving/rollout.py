"""The online gate: a candidate arm earns all traffic, or loses its share, on project completion.

The loop (each step logged and written to the warehouse table ``rollout_decisions``):

1. ``start_candidate`` gives a registry student (default: ``current``) a share of traffic as a new
   arm ``student-<version>`` next to the champion arm, under a fresh experiment salt. A champion
   that followed the moving ``current`` pointer is pinned to the version it was serving, so the
   comparison is between two fixed models.
2. ``decide`` reads ``ab_completion_total`` (projects started/exported per variant, from the served
   prompt events) and, once both arms have ``rollout_min_sample`` projects, compares them
   (``serving.stats``): non-inferior within ``rollout_margin`` at ``rollout_alpha`` → "promote";
   otherwise significantly worse → "rollback"; otherwise "keep_collecting". Non-inferiority is
   checked first: a candidate proven within the margin is accepted by design.
3. ``step`` applies the verdict: promote = the candidate becomes the only live arm (pinned) and, if
   it is a registry model that is not ``current``, it is promoted in the registry (forced: the
   online evidence is the gate now); rollback = its weight goes to 0 (the arm stays listed, so
   ``watch`` never restarts it) and, if the trainer had already made it ``current``, the registry
   pointer goes back to the champion's version.
4. ``watch`` repeats: start a candidate when the registry's ``current`` is a version the plan has
   never served, then ``step``.

Servers pick up plan and registry changes on their own (``serving.models``). Caveat: the champion's
numbers include its traffic before the candidate started (the warehouse views aggregate per
variant), so a strong time trend can bias the comparison; candidate variants are always fresh.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from foundation.settings import Settings
from serving.ab import Arm, TrafficPlan, load_plan, save_plan
from serving.exceptions import RolloutError
from serving.stats import compare, wilson

log = logging.getLogger(__name__)

Verdict = Literal["promote", "rollback", "keep_collecting", "no_candidate"]
TABLE = "rollout_decisions"


@dataclass(frozen=True)
class ArmStats:
    variant: str
    n: int
    x: int
    rate: float
    ci95_low: float
    ci95_high: float


@dataclass
class Decision:
    verdict: Verdict
    reason: str
    experiment: str
    champion: ArmStats | None = None
    candidate: ArmStats | None = None
    candidate_model: str | None = None
    diff: float | None = None
    z_noninferior: float | None = None
    p_noninferior: float | None = None
    z_worse: float | None = None
    p_worse: float | None = None
    margin: float = 0.0
    alpha: float = 0.05
    min_sample: int = 0
    action: str = "none"
    decision_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    ts: datetime = field(default_factory=lambda: datetime.now(UTC))

    def row(self) -> dict[str, Any]:
        """The warehouse row (flat columns; see the report for the schema)."""
        out: dict[str, Any] = {k: v for k, v in asdict(self).items() if k not in ("champion", "candidate")}
        for role in ("champion", "candidate"):
            arm: ArmStats | None = getattr(self, role)
            for key in ("variant", "n", "x", "rate", "ci95_low", "ci95_high"):
                out[f"{role}_{key}"] = getattr(arm, key) if arm else None
        return out

    def summary(self) -> str:
        if self.champion is None or self.candidate is None:
            return f"{self.verdict}: {self.reason}"
        c, h = self.candidate, self.champion
        arms = (f"{c.variant} {c.x}/{c.n}={c.rate:.3f} [{c.ci95_low:.3f},{c.ci95_high:.3f}] vs "
                f"{h.variant} {h.x}/{h.n}={h.rate:.3f} [{h.ci95_low:.3f},{h.ci95_high:.3f}]")
        tests = "" if self.diff is None else (
            f"; diff {self.diff:+.3f}, non-inferiority (δ={self.margin}) z={self.z_noninferior:.2f} "
            f"p={self.p_noninferior:.4f}, worse z={self.z_worse:.2f} p={self.p_worse:.4f}")
        action = "" if self.action == "none" else f"; action: {self.action}"
        return f"{self.verdict}: {arms}{tests}; {self.reason}{action}"


def completion_by_variant(settings: Settings) -> dict[str, ArmStats]:
    """Projects started / exported per variant, from the warehouse view ``ab_completion_total``."""
    from warehouse.catalog import connect

    rows = connect(settings).execute(
        "SELECT variant, projects_started, projects_exported FROM ab_completion_total").fetchall()
    out = {}
    for variant, n, x in rows:
        low, high = wilson(int(x), int(n))
        out[str(variant)] = ArmStats(str(variant), int(n), int(x), x / n if n else 0.0, low, high)
    return out


def candidate_arm(plan: TrafficPlan) -> Arm | None:
    """The one live arm that is not the champion (one candidate at a time)."""
    others = [a for a in plan.live_arms if a.variant != plan.champion]
    if len(others) > 1:
        msg = (f"the plan has {len(others)} live challengers ({', '.join(a.variant for a in others)}); "
               "the online gate compares one candidate at a time: set the others' weight to 0")
        raise RolloutError(msg)
    return others[0] if others else None


def decide(settings: Settings, plan: TrafficPlan | None = None,
           stats: dict[str, ArmStats] | None = None) -> Decision:
    """The verdict for the current plan's candidate; reads, never changes anything."""
    plan = plan or load_plan(settings)
    base: dict[str, Any] = {"experiment": plan.experiment, "margin": settings.rollout_margin,
                            "alpha": settings.rollout_alpha, "min_sample": settings.rollout_min_sample}
    cand = candidate_arm(plan)
    if cand is None:
        return Decision("no_candidate", f"{plan.champion} serves all traffic; start one with "
                        "`toneflow rollout start-candidate`", **base)
    stats = completion_by_variant(settings) if stats is None else stats
    c = stats.get(cand.variant, ArmStats(cand.variant, 0, 0, 0.0, 0.0, 1.0))
    h = stats.get(plan.champion, ArmStats(plan.champion, 0, 0, 0.0, 0.0, 1.0))
    model = cand.model_key if cand.kind == "student" else "teacher"
    if min(h.n, c.n) < settings.rollout_min_sample:
        return Decision("keep_collecting", f"need {settings.rollout_min_sample} projects per arm "
                        f"(have {c.n} and {h.n})", champion=h, candidate=c, candidate_model=model, **base)
    cmp = compare(c.x, c.n, h.x, h.n, settings.rollout_margin)
    numbers: dict[str, Any] = {"diff": cmp.diff, "z_noninferior": cmp.z_noninferior, "p_noninferior": cmp.p_noninferior,
               "z_worse": cmp.z_worse, "p_worse": cmp.p_worse}
    alpha = settings.rollout_alpha
    verdict: Verdict
    if cmp.p_noninferior < alpha:
        verdict, reason = "promote", f"not worse than the champion by more than {settings.rollout_margin} (p < {alpha})"
    elif cmp.p_worse < alpha:
        verdict, reason = "rollback", f"significantly worse than the champion (p < {alpha})"
    else:
        verdict, reason = "keep_collecting", "not significant either way yet"
    return Decision(verdict, reason, champion=h, candidate=c, candidate_model=model, **numbers, **base)


# --- acting on a verdict ----------------------------------------------------------------------------
def _version_of(settings: Settings, arm: Arm) -> str | None:
    from trainer.registry import resolve

    return resolve(settings, arm.model_key) if arm.model_key else None


def _pinned(settings: Settings, arm: Arm) -> Arm:
    """The arm with ``current`` replaced by the version it resolves to now."""
    if arm.kind != "student" or (arm.model and arm.model != "current"):
        return arm
    return Arm(arm.variant, arm.kind, arm.weight, _version_of(settings, arm))


def _apply(settings: Settings, plan: TrafficPlan, decision: Decision) -> str:
    from trainer import registry

    cand = candidate_arm(plan)
    assert cand is not None  # decide() returned promote/rollback only with a candidate
    champion = plan.arm(plan.champion)
    if decision.verdict == "promote":
        steps = []
        version = _version_of(settings, cand)
        cur = registry.read_current(settings)
        if version is not None and (cur is None or cur["version"] != version):
            registry.promote(settings, version, force=True)
            steps.append(f"registry current -> {version}")
        winner = Arm(cand.variant, cand.kind, 1.0, version if cand.kind == "student" else None)
        arms = [winner, *(Arm(a.variant, a.kind, 0.0, a.model) for a in plan.arms if a.variant != cand.variant)]
        save_plan(settings, plan.with_arms(arms, champion=cand.variant))
        steps.append(f"{cand.variant} serves 100%")
        return "; ".join(steps)
    steps = []
    version = _version_of(settings, cand)
    cur = registry.read_current(settings)
    if version is not None and cur is not None and cur["version"] == version:
        target = _version_of(settings, champion) if champion.kind == "student" else None
        if target is not None and target != version:
            registry.rollback(settings, to=target)
            steps.append(f"registry current -> {target}")
        elif cur.get("history"):
            registry.rollback(settings)
            steps.append(f"registry current -> {cur['history'][-1]}")
        else:
            steps.append(f"registry current stays {version} (nothing to roll back to)")
    arms = [Arm(a.variant, a.kind, 1.0 if a.variant == champion.variant else 0.0, a.model) for a in plan.arms]
    save_plan(settings, plan.with_arms(arms))
    steps.insert(0, f"{cand.variant} weight -> 0, {champion.variant} serves 100%")
    return "; ".join(steps)


def record(settings: Settings, decision: Decision) -> None:
    """Log the decision and write it to the warehouse (idempotent per decision_id)."""
    from warehouse.writer import write_rows

    log.warning("rollout decision: %s", decision.summary())
    write_rows(settings, TABLE, [decision.row()], key=decision.decision_id)


def step(settings: Settings, *, apply: bool = True) -> Decision:
    """Decide, act on a promote/rollback verdict (when ``apply``), record. Returns the decision."""
    plan = load_plan(settings)
    decision = decide(settings, plan)
    if apply and decision.verdict in ("promote", "rollback"):
        decision.action = _apply(settings, plan, decision)
    if decision.verdict != "no_candidate":
        record(settings, decision)
    return decision


def start_candidate(settings: Settings, model: str = "current", share: float | None = None,
                    variant: str | None = None) -> TrafficPlan:
    """Give registry model ``model`` a ``share`` of traffic next to the champion (new experiment)."""
    from trainer import registry

    share = settings.rollout_candidate_share if share is None else share
    if not 0 < share < 1:
        msg = f"--share must be between 0 and 1 (exclusive), got {share}"
        raise RolloutError(msg)
    version = registry.resolve(settings, model)
    plan = load_plan(settings)
    champion = plan.arm(plan.champion)
    if champion.kind == "student" and champion.model_key == "current" and _version_of(settings, champion) == version:
        # The trainer already moved `current` to the candidate: the champion is the one before it.
        cur = registry.read_current(settings) or {}
        if not cur.get("history"):
            msg = f"{version} is the only promoted model; there is no champion version to compare it with"
            raise RolloutError(msg)
        champion = Arm(champion.variant, "student", champion.weight, cur["history"][-1])
    champion = _pinned(settings, champion)
    name = variant or f"student-{version}"
    if name == champion.variant or (champion.kind == "student" and champion.model == version):
        msg = f"{version} is already the champion ({champion.variant})"
        raise RolloutError(msg)
    arms = [Arm(champion.variant, champion.kind, 1 - share, champion.model), Arm(name, "student", share, version)]
    arms += [Arm(a.variant, a.kind, 0.0, a.model) for a in plan.arms if a.variant not in (champion.variant, name)]
    new = plan.with_arms(arms, champion=champion.variant, experiment=f"{name}-{int(time.time())}")
    save_plan(settings, new)
    log.warning("candidate %s (%s) gets %.0f%% of traffic against %s", name, version, share * 100, champion.variant)
    return new


def tried_versions(plan: TrafficPlan) -> set[str]:
    return {a.model for a in plan.arms if a.kind == "student" and a.model and a.model != "current"}


def watch_once(settings: Settings) -> Decision:
    """One round of the automatic loop: start a new candidate if the registry has one, then step."""
    from trainer.registry import read_current

    plan = load_plan(settings)
    cur = read_current(settings)
    if cur is not None and candidate_arm(plan) is None and cur["version"] not in tried_versions(plan):
        champion = plan.arm(plan.champion)
        if not (champion.kind == "student" and champion.model_key == "current") or cur.get("history"):
            start_candidate(settings, cur["version"])
    return step(settings)


def recent_decisions(settings: Settings, limit: int = 10) -> list[dict[str, Any]]:
    """The last ``limit`` recorded decisions, newest first (read straight from the Parquet files)."""
    import duckdb

    from warehouse.layout import data_files, glob_pattern

    if not data_files(settings, TABLE):
        return []
    con = duckdb.connect(":memory:")
    cur = con.execute(f"SELECT * FROM read_parquet('{glob_pattern(settings, TABLE)}', union_by_name = true) "
                      f"ORDER BY ts DESC LIMIT {int(limit)}")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]
