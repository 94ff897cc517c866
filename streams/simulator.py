"""``toneflow simulate``: realistic app traffic through the producer SDK, with its own ground truth.

Each simulated project: a user types a look (a Zipf-popular intent in a random surface form, with
typos and case noise); the app serves the teacher's edit (the offline teacher at a non-zero
temperature, so served edits carry LLM-like noise); the user exports with a probability that grows
with how close the served edit is to that look's hidden intent, sometimes tweaking it first
(``final_edit``); some never export. Exports arrive seconds to hours later, and some reach the
broker before their prompt. A few events are sent twice (same event_id), as app retries do.

The run is seeded and reproducible. It writes a manifest (``<data_dir>/sim/<run_id>.json``) with the
prompt event_ids that must end up in ``accepted_examples``: valid prompts of exported projects.
"""

from __future__ import annotations

import json
import math
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from foundation.settings import Settings
from schemas import Edit, adjust_vector, selective_vector
from schemas.events import TOPIC_EXPORTS, TOPIC_PROMPTS, ExportEvent, PromptEvent, ServedBy, to_json_bytes
from schemas.trust import sign_served, signing_key
from streams.malformed import malformed_records
from streams.vocabulary import INTENTS, surface_form, zipf_weights

SERVED_TEMPERATURE = 0.6
TWEAK_RATE = 0.15
DUPLICATE_RATE = 0.03
EXPORT_FIRST_RATE = 0.10


@dataclass
class Plan:
    """Everything the simulator decided, before anything is sent."""

    wire: list[tuple[str, str | None, bytes, str]] = field(default_factory=list)  # topic, key, value, event_id
    expected_accepted: list[str] = field(default_factory=list)
    projects: int = 0
    exports: int = 0
    tweaked: int = 0
    duplicates: int = 0
    malformed: int = 0
    export_first: int = 0


def similarity(served: Edit, intent: Edit) -> float:
    """How close the served edit is to what the user wanted: 0 (unrelated) .. 1 (same)."""
    a = adjust_vector(served) + selective_vector(served)
    b = adjust_vector(intent) + selective_vector(intent)
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(x * x for x in b))
    cos = 1.0 if na == nb == 0 else (sum(x * y for x, y in zip(a, b)) / (na * nb) if na and nb else 0.0)
    fa, fb = served.filter.name if served.filter else None, intent.filter.name if intent.filter else None
    return max(0.0, 0.6 * cos + 0.4 * (1.0 if fa == fb else 0.0))


def export_probability(sim: float) -> float:
    """Users export edits close to what they wanted; below 0.7 similarity almost nobody does."""
    closeness = min(1.0, max(0.0, (sim - 0.7) / 0.3))
    return 0.05 + 0.65 * closeness * closeness


class Users:
    """The simulated user population: what they ask for, what they really want, how they react."""

    def __init__(self, seed: int) -> None:
        from teacher.offline import OfflineTeacher

        self.rng = random.Random(seed)
        self.run = uuid.UUID(int=self.rng.getrandbits(128)).hex[:8]
        self._exact = OfflineTeacher(temperature=0.0, seed=seed)
        self._hidden: dict[str, Edit] = {}

    def draw(self, n: int) -> list[tuple[str, str]]:
        """(intent, what the user types) for n projects; intents Zipf-popular."""
        intents = self.rng.choices(INTENTS, weights=zipf_weights(len(INTENTS)), k=n)
        missing = sorted(set(intents) - set(self._hidden))
        self._hidden.update({lab.prompt: lab.edit or Edit() for lab in self._exact.label_sync(missing)})
        return [(i, surface_form(i, self.rng)) for i in intents]

    def user_id(self, population: int) -> str:
        return f"user-{self.rng.randrange(max(10, population)):05d}"

    def react(self, intent: str, served: Edit) -> tuple[bool, Edit | None, float]:
        """(exports?, final_edit if the user tweaked it, seconds until the export)."""
        hidden = self._hidden[intent]
        if self.rng.random() >= export_probability(similarity(served, hidden)):
            return False, None, 0.0
        late = self.rng.random() < 0.05
        delay = self.rng.uniform(2 * 3600, 5 * 3600) if late else self.rng.lognormvariate(math.log(30), 1.0)
        return True, hidden if self.rng.random() < TWEAK_RATE else None, delay


def plan_traffic(settings: Settings, projects: int, seed: int, *, malformed: int = 0,
                 variant: str = "teacher", teacher: Any = None) -> Plan:
    from teacher.offline import OfflineTeacher

    users = Users(seed)
    rng, run = users.rng, users.run
    served_teacher = teacher or OfflineTeacher(temperature=SERVED_TEMPERATURE, seed=seed)
    drawn = users.draw(projects)
    served = served_teacher.label_sync([text for _, text in drawn])
    served_by = ServedBy(kind="teacher", model=served_teacher.name, version=served_teacher.version, variant=variant)
    sig_key = signing_key(settings)

    span_s = max(60.0, projects * 0.5)
    base = datetime.now(UTC) - timedelta(seconds=span_s + 6 * 3600)
    timeline: list[tuple[float, str, str | None, bytes, str]] = []
    plan = Plan(projects=projects)
    for i, ((intent, text), label) in enumerate(zip(drawn, served)):
        project, user = f"sim-{run}-{i:06d}", users.user_id(projects // 3)
        t0 = rng.uniform(0, span_s)
        served_edit = label.edit or Edit()
        # The simulator plays `toneflow serve` answering with the teacher, so it signs as the server does.
        prompt = PromptEvent(event_id=f"pr-{project}", project_id=project, user_id=user,
                             ts=base + timedelta(seconds=t0), prompt=text, served_by=served_by, served_edit=served_edit,
                             served_sig=sign_served(sig_key, text, served_by, served_edit))
        timeline.append((t0, TOPIC_PROMPTS, project, to_json_bytes(prompt), prompt.event_id))
        if rng.random() < DUPLICATE_RATE:
            timeline.append((t0 + 1, TOPIC_PROMPTS, project, to_json_bytes(prompt), prompt.event_id))
            plan.duplicates += 1
        exports, final_edit, delay = users.react(intent, served_edit)
        if not exports:
            continue
        export = ExportEvent(event_id=f"ex-{project}", project_id=project, user_id=user,
                             ts=prompt.ts + timedelta(seconds=delay), final_edit=final_edit)
        # Some exports overtake their prompt on the way to the broker (network reordering).
        send_at = t0 - 0.5 if rng.random() < EXPORT_FIRST_RATE else t0 + min(delay, span_s)
        plan.export_first += send_at < t0
        timeline.append((send_at, TOPIC_EXPORTS, project, to_json_bytes(export), export.event_id))
        if rng.random() < DUPLICATE_RATE:
            timeline.append((send_at + 2, TOPIC_EXPORTS, project, to_json_bytes(export), export.event_id))
            plan.duplicates += 1
        plan.exports += 1
        plan.tweaked += final_edit is not None
        plan.expected_accepted.append(prompt.event_id)
    for k, (topic, key, value) in enumerate(malformed_records(malformed, rng)):
        timeline.append((rng.uniform(0, span_s), topic, key, value, f"bad-{k}"))
    plan.malformed = malformed
    timeline.sort(key=lambda item: item[0])
    plan.wire = [(topic, key, value, eid) for _, topic, key, value, eid in timeline]
    return plan


def write_manifest(settings: Settings, plan: Plan, seed: int) -> Path:
    out = settings.data_path / "sim"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"run-{seed}-{plan.projects}-{int(time.time())}.json"
    manifest = {
        "seed": seed, "projects": plan.projects, "exports": plan.exports, "tweaked": plan.tweaked,
        "duplicates": plan.duplicates, "export_first": plan.export_first, "malformed": plan.malformed,
        "events_sent": len(plan.wire), "expected_accepted": plan.expected_accepted,
    }
    path.write_text(json.dumps(manifest))
    (out / "latest.json").write_text(json.dumps({"manifest": str(path)}))
    return path


def send(settings: Settings, plan: Plan, *, rate: float = 0.0, progress: bool = True) -> int:
    """Produce the plan through the SDK; ``rate`` events/s (0 = as fast as possible)."""
    from tqdm import tqdm

    from streams.producer import EventProducer

    started = time.perf_counter()
    with EventProducer(settings) as producer:
        for n, (topic, key, value, event_id) in enumerate(tqdm(plan.wire, desc="events", unit="ev",
                                                               disable=not progress), 1):
            producer.send_raw(topic, key, value, event_id)
            if rate > 0:
                ahead = n / rate - (time.perf_counter() - started)
                if ahead > 0:
                    time.sleep(ahead)
    return len(plan.wire)
