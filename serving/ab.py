"""The traffic plan: which arms (teacher, students) serve which users, and with what weight.

The plan lives in ``<data_dir>/serving/traffic.json`` and is replaced atomically (temp file,
fsync, rename), so a server polling it sees the old plan or the new one, never a torn one::

    {"experiment": "exp-1", "champion": "teacher",
     "arms": [{"variant": "teacher", "kind": "teacher", "weight": 0.7},
              {"variant": "student", "kind": "student", "model": "current", "weight": 0.3}]}

Guarantees of ``TrafficPlan.assign``:

* deterministic: ``sha256(experiment + ":" + user_id)`` → a point in [0, 1) → the arm whose
  cumulative (normalised) weight band contains it; the same user gets the same arm in every
  process and after every restart;
* stable: as long as the experiment salt and the weights do not change, nobody moves;
* arms with weight 0 never serve (a rolled-back candidate stays listed, for the record).

Without a plan file the default is 100% teacher when no student has been promoted, else
``TONEFLOW_SERVE_STUDENT_SHARE`` of users on the current student and the rest on the teacher.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from foundation.settings import Settings
from serving.exceptions import TrafficPlanError

ArmKind = Literal["teacher", "student"]
ARM_KINDS: tuple[ArmKind, ...] = ("teacher", "student")
PLAN_FILE = "traffic.json"
DEFAULT_EXPERIMENT = "default"


@dataclass(frozen=True)
class Arm:
    """One A/B arm. ``model`` is "current" (follows the registry pointer) or a pinned version."""

    variant: str
    kind: ArmKind
    weight: float
    model: str | None = None

    @property
    def model_key(self) -> str | None:
        """The registry name a student arm loads; None for the teacher."""
        return (self.model or "current") if self.kind == "student" else None


@dataclass(frozen=True)
class TrafficPlan:
    experiment: str
    arms: tuple[Arm, ...]
    champion: str
    source: str = field(default="file", compare=False)  # "file" | "default"

    def __post_init__(self) -> None:
        names = [a.variant for a in self.arms]
        problems = []
        if not self.arms:
            problems.append("it has no arms")
        if len(set(names)) != len(names):
            problems.append(f"variant names repeat ({names})")
        if any(a.kind not in ARM_KINDS for a in self.arms):
            problems.append(f"an arm's kind is not one of {ARM_KINDS}")
        if any(not (a.weight >= 0) for a in self.arms) or sum(a.weight for a in self.arms) <= 0:
            problems.append("weights must be >= 0 with a positive sum")
        if self.champion not in names:
            problems.append(f"champion {self.champion!r} is not one of its arms")
        if problems:
            msg = f"invalid traffic plan: {'; '.join(problems)}; fix or delete it (`toneflow rollout reset`)"
            raise TrafficPlanError(msg)

    @property
    def live_arms(self) -> tuple[Arm, ...]:
        return tuple(a for a in self.arms if a.weight > 0)

    def arm(self, variant: str) -> Arm:
        for a in self.arms:
            if a.variant == variant:
                return a
        msg = f"no arm {variant!r} in the traffic plan (arms: {', '.join(a.variant for a in self.arms)})"
        raise TrafficPlanError(msg)

    def shares(self) -> dict[str, float]:
        total = sum(a.weight for a in self.arms)
        return {a.variant: a.weight / total for a in self.arms}

    def assign(self, user_id: str) -> Arm:
        """The arm serving ``user_id`` (deterministic, see the module docstring)."""
        point = bucket(self.experiment, user_id)
        total = sum(a.weight for a in self.arms)
        cumulative = 0.0
        live = self.live_arms
        for a in live:
            cumulative += a.weight / total
            if point < cumulative:
                return a
        return live[-1]  # float rounding can leave the last band a hair short of 1.0

    def student_models(self) -> set[str]:
        """Registry names the live student arms need loaded."""
        return {a.model_key for a in self.live_arms if a.model_key is not None}

    def with_arms(self, arms: list[Arm], champion: str | None = None, experiment: str | None = None) -> TrafficPlan:
        return replace(self, arms=tuple(arms), champion=champion or self.champion,
                       experiment=experiment or self.experiment, source="file")

    def to_dict(self) -> dict[str, Any]:
        arms = [{k: v for k, v in asdict(a).items() if v is not None} for a in self.arms]
        return {"experiment": self.experiment, "champion": self.champion, "arms": arms}

    @classmethod
    def from_dict(cls, raw: Any, source: str = "file") -> TrafficPlan:
        try:
            arms = tuple(Arm(variant=str(a["variant"]), kind=a["kind"], weight=float(a["weight"]),
                             model=a.get("model")) for a in raw["arms"])
            champion = raw.get("champion") or (max(arms, key=lambda a: a.weight).variant if arms else "")
            return cls(experiment=str(raw.get("experiment") or DEFAULT_EXPERIMENT), arms=arms,
                       champion=champion, source=source)
        except (KeyError, TypeError, ValueError) as err:
            msg = (f"invalid traffic plan ({type(err).__name__}: {err}); expected "
                   '{"experiment", "arms": [{"variant", "kind", "weight", "model"?}]}')
            raise TrafficPlanError(msg) from None


def bucket(experiment: str, user_id: str) -> float:
    """A uniform point in [0, 1) from (experiment salt, user); 64 bits of sha256."""
    digest = hashlib.sha256(f"{experiment}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def plan_path(settings: Settings) -> Path:
    return settings.data_path / "serving" / PLAN_FILE


def default_plan(settings: Settings) -> TrafficPlan:
    from trainer.registry import read_current

    teacher = Arm("teacher", "teacher", 1.0)
    share = settings.serve_student_share
    if read_current(settings) is None or share == 0:
        return TrafficPlan(DEFAULT_EXPERIMENT, (teacher,), "teacher", source="default")
    student = Arm("student", "student", share, model="current")
    if share == 1:
        return TrafficPlan(DEFAULT_EXPERIMENT, (student,), "student", source="default")
    champion = "student" if share >= 0.5 else "teacher"
    return TrafficPlan(DEFAULT_EXPERIMENT, (replace(teacher, weight=1 - share), student), champion,
                       source="default")


def load_plan(settings: Settings) -> TrafficPlan:
    """The plan file if there is one, else the default plan."""
    path = plan_path(settings)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default_plan(settings)
    except (OSError, json.JSONDecodeError) as err:
        msg = f"cannot read the traffic plan {path}: {err}; fix or delete it"
        raise TrafficPlanError(msg) from None
    return TrafficPlan.from_dict(raw)


def save_plan(settings: Settings, plan: TrafficPlan) -> Path:
    """Replace the plan file atomically; servers pick it up within their reload interval."""
    from foundation.osutil import atomic_write_json

    path = plan_path(settings)
    atomic_write_json(path, plan.to_dict())
    return path


def reset_plan(settings: Settings) -> bool:
    """Delete the plan file (back to the default plan); True if there was one."""
    path = plan_path(settings)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def promotion_effect(settings: Settings, version: str) -> str | None:
    """None when serving follows the registry's ``current`` to ``version``; else why it will not.

    Only arms that load "current" move with a promote: an arm pinned to a version keeps serving
    that version, and a plan without a live student arm on "current" serves no student at all.
    """
    from trainer.exceptions import TrainerError
    from trainer.registry import resolve

    plan = load_plan(settings)
    students = [a for a in plan.live_arms if a.kind == "student"]
    for arm in students:
        if arm.model_key == "current":
            return None
        try:
            if resolve(settings, arm.model_key or "current") == version:
                return None  # already served by a pinned arm
        except TrainerError:
            continue
    if plan.source == "default":
        where = "the default traffic plan (no plan file)"
        why = f"TONEFLOW_SERVE_STUDENT_SHARE is {settings.serve_student_share}, so no user is served a student"
    else:
        where = f"the traffic plan {plan_path(settings)}"
        pinned = ", ".join(f"{a.variant} -> {a.model}" for a in students)
        why = f"its student arms are pinned ({pinned})" if students else "it has no live student arm"
    return (f"serving will not change: {where} sends no traffic to the current model: {why}; to serve {version}, "
            f"run `toneflow rollout start-candidate --model {version}`, or `toneflow rollout reset` to follow current")
