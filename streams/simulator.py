"""``toneflow simulate``: realistic app traffic through the producer SDK, with its own ground truth.

Each simulated project: a user types a request, one of three kinds in a configurable mix
(``Mix``, ``TONEFLOW_SIM_MIX``; its default, ``Mix.default()``, gives each kind a share):

* **looks**: a Zipf-popular look intent in a random surface form ("golden hour vibes"), hidden
  intent = the noise-free offline teacher's edit for the look;
* **explicit**: one to three (attribute, direction, amount) clauses from the grammar in
  ``streams.vocabulary`` ("increase the contrast a little, and make it warmer"), hidden intent known
  exactly: the adjustment table's edit for those clauses (``teacher/adjustments.py``);
* **real**: a real human request from the shared pool (``<real_requests_dir>/pool.txt``, read at run
  time, never copied) or, without it, a small built-in list; hidden intent = the noise-free offline
  teacher's label of that request (the best stand-in there is for what its author meant).

Typos and case noise are added to looks and explicit requests. The app serves the teacher's edit
(the offline teacher at a non-zero temperature, so served edits carry LLM-like noise); the user
exports with a probability that grows with how close the served edit is to the hidden intent,
sometimes tweaking it first (``final_edit``); some never export. Exports arrive seconds to hours later, and some reach the
broker before their prompt. A few events are sent twice (same event_id), as app retries do.

The same module makes the trainer's simulated datasets (``generate_prompts``, ``simulate_dataset``:
prompts labelled by the offline teacher, for the benchmarks and fixtures).

The run is seeded and reproducible. It writes a manifest (``<data_dir>/sim/<run_id>.json``) with the
prompt event_ids that must end up in ``accepted_examples``: valid prompts of exported projects.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from foundation.errors import ToneflowError
from foundation.settings import Settings
from schemas import Edit, adjust_vector, selective_vector
from schemas.events import TOPIC_EXPORTS, TOPIC_PROMPTS, ExportEvent, PromptEvent, ServedBy, to_json_bytes
from schemas.text import normalise_prompt
from schemas.trust import sign_served, signing_key
from streams.malformed import malformed_records
from streams.vocabulary import FRAMES, INTENTS, explicit_request, real_requests, surface_form, typo, zipf_weights

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


@dataclass(frozen=True)
class Mix:
    """Shares of the three kinds of request (normalised; a share of 0 turns a kind off)."""

    looks: float
    explicit: float
    real: float

    KINDS = ("looks", "explicit", "real")

    @classmethod
    def default(cls) -> Mix:
        """The default traffic: ``TONEFLOW_SIM_MIX``'s default (foundation/settings.py owns the shares)."""
        return cls.parse(Settings.model_fields["sim_mix"].default)

    @classmethod
    def parse(cls, text: str) -> Mix:
        """``"looks=0.4,explicit=0.35,real=0.25"`` (kinds left out get 0)."""
        shares = dict.fromkeys(cls.KINDS, 0.0)
        for part in (p.strip() for p in text.split(",") if p.strip()):
            name, _, value = part.partition("=")
            name = name.strip()
            try:
                share = float(value)
            except ValueError:
                share = -1.0
            if name not in shares or share < 0:
                msg = (f"bad simulator mix part {part!r}; write kind=share with kinds {', '.join(cls.KINDS)} "
                       "and shares >= 0, e.g. looks=0.4,explicit=0.35,real=0.25 (TONEFLOW_SIM_MIX)")
                raise ToneflowError(msg)
            shares[name] = share
        if sum(shares.values()) <= 0:
            msg = "the simulator mix gives every kind a share of 0; give at least one kind a share above 0"
            raise ToneflowError(msg)
        return cls(**shares)

    def weights(self) -> list[float]:
        return [self.looks, self.explicit, self.real]


LOOKS_ONLY = Mix(1.0, 0.0, 0.0)


def _explicit_edit(adjustments: Sequence[Any]) -> Edit:
    from teacher.adjustments import to_vector
    from teacher.library import VECTOR_KEYS, vector_to_edit

    return vector_to_edit(to_vector(adjustments, VECTOR_KEYS), None)


class Users:
    """The simulated user population: what they ask for, what they really want, how they react."""

    def __init__(self, seed: int, mix: Mix | None = None, *, pool: Sequence[str] | None = None,
                 settings: Settings | None = None) -> None:
        from teacher.offline import OfflineTeacher

        if settings is None:
            from foundation.settings import get_settings

            settings = get_settings()
        self.rng = random.Random(seed)
        self.run = uuid.UUID(int=self.rng.getrandbits(128)).hex[:8]
        self.mix = mix or Mix.parse(settings.sim_mix)
        self.pool = tuple(pool) if pool is not None else real_requests(settings.real_requests_dir)
        self._exact = OfflineTeacher(temperature=0.0, seed=seed)
        self._hidden: dict[str, Edit] = {}
        self.kinds: dict[str, str] = {}  # intent key -> looks | explicit | real
        self.meaning: dict[str, tuple[Any, ...]] = {}  # explicit intent key -> its exact adjustments

    def draw(self, n: int) -> list[tuple[str, str]]:
        """(intent key, what the user types) for n projects, in the configured mix."""
        drawn: list[tuple[str, str]] = []
        to_label: dict[str, str] = {}  # intent key -> text the noise-free teacher labels for its hidden intent
        look_weights = zipf_weights(len(INTENTS))
        for kind in self.rng.choices(Mix.KINDS, weights=self.mix.weights(), k=n):
            if kind == "looks":
                intent = self.rng.choices(INTENTS, weights=look_weights, k=1)[0]
                drawn.append((intent, surface_form(intent, self.rng)))
                to_label[intent] = intent
            elif kind == "explicit":
                request = explicit_request(self.rng)
                key = "explicit: " + "; ".join(f"{a}{' local' if a.local else ''}" for a in request.adjustments)
                self._hidden.setdefault(key, _explicit_edit(request.adjustments))
                self.meaning[key] = request.adjustments
                drawn.append((key, surface_form(request.text, self.rng, framed=False)))
            else:
                text = self.rng.choice(self.pool)
                drawn.append(("real: " + text, text))
                to_label["real: " + text] = text
            self.kinds[drawn[-1][0]] = kind
        missing = {key: text for key, text in to_label.items() if key not in self._hidden}
        texts = sorted(set(missing.values()))
        edits = {lab.prompt: lab.edit or Edit() for lab in self._exact.label_sync(texts)} if texts else {}
        self._hidden.update({key: edits[text] for key, text in missing.items()})
        return drawn

    def hidden(self, intent: str) -> Edit:
        """What the user behind ``intent`` really wants."""
        return self._hidden[intent]

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
                 variant: str = "teacher", teacher: Any = None, mix: Mix | None = None) -> Plan:
    from teacher.offline import OfflineTeacher

    users = Users(seed, mix, settings=settings)
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


# -- simulated datasets for the trainer (benchmarks, fixtures) -----------------------------------
_DATASET_MODIFIERS = ("slightly", "a bit", "very", "a lot more", "a touch of", "super", "subtle", "really",
                      "a little", "extremely", "kind of", "not too")
_DATASET_JOINERS = (" and ", ", ", " with ", " plus ")


def _library_phrases() -> list[str]:
    from teacher.library import load_library

    return sorted({p for look in load_library().looks for p in look.phrases})


def _look_prompt(phrases: Sequence[str], rng: random.Random) -> str:
    """A look phrase from the teacher's library, often with a modifier, a framing, a second look or a typo."""
    p = rng.choice(phrases)
    roll = rng.random()
    if roll < 0.30:
        return rng.choice(FRAMES).format(p=p)
    if roll < 0.60:
        return rng.choice(FRAMES).format(p=f"{rng.choice(_DATASET_MODIFIERS)} {p}")
    if roll < 0.85:
        q = rng.choice(phrases)
        left = f"{rng.choice(_DATASET_MODIFIERS)} {p}" if rng.random() < 0.3 else p
        return f"{left}{rng.choice(_DATASET_JOINERS)}{q}"
    return typo(rng.choice(FRAMES).format(p=p), rng)


def generate_prompts(n: int, seed: int = 0, phrases: Sequence[str] | None = None, *, mix: Mix = LOOKS_ONLY,
                     pool: Sequence[str] | None = None) -> list[str]:
    """``n`` distinct (after normalisation) requests: library looks, explicit requests and real ones by ``mix``.

    ``LOOKS_ONLY`` (the default) gives exactly the datasets the trainer benchmarks have always used.
    """
    rng = random.Random(seed)
    phrases = list(phrases or _library_phrases())
    real = list(pool) if pool is not None else list(real_requests(_settings().real_requests_dir)) if mix.real else []
    seen: set[str] = set()
    out: list[str] = []
    attempts = 0
    while len(out) < n and attempts < n * 50:
        attempts += 1
        kind = "looks" if mix == LOOKS_ONLY else rng.choices(Mix.KINDS, weights=mix.weights())[0]
        if kind == "looks":
            text = _look_prompt(phrases, rng)
        elif kind == "explicit":
            text = surface_form(explicit_request(rng).text, rng, framed=False)
        else:
            text = rng.choice(real)
        norm = normalise_prompt(text)
        if norm and norm not in seen:
            seen.add(norm)
            out.append(text)
    return out


def _settings() -> Settings:
    from foundation.settings import get_settings

    return get_settings()


def label_prompts(prompts: Sequence[str], *, temperature: float = 0.0, seed: int = 0,
                  batch: int = 256) -> list[dict[str, Any]]:
    """Label prompts with the offline teacher; rows the teacher could not label are left out.

    ``exporters`` (distinct users who exported the edit) is drawn from a geometric-like
    distribution, so r_3 / r_5 subsets exist.
    """
    from teacher.offline import OfflineTeacher

    teacher = OfflineTeacher(temperature=temperature, seed=seed)
    rows: list[dict[str, Any]] = []
    rng = random.Random(seed + 1)

    async def run() -> None:
        for i in range(0, len(prompts), batch):
            for lab in await teacher.label(list(prompts[i:i + batch])):
                if lab.ok and lab.edit is not None:
                    exporters = min(12, int(rng.expovariate(0.35)) + 1)
                    rows.append({"id": f"sim-{len(rows):06d}", "prompt": lab.prompt,
                                 "edit": lab.edit.canonical_dict(), "exporters": exporters})

    asyncio.run(run())
    return rows


def simulate_dataset(path: str | Path, n: int, *, seed: int = 0, temperature: float = 0.0,
                     mix: Mix = LOOKS_ONLY) -> Path:
    """Write ``n`` prompts labelled by the offline teacher as JSONL (id, prompt, edit, exporters).

    Deterministic: the same (n, seed, mix) gives the same prompts, and the offline teacher is
    deterministic at a fixed (temperature, seed).
    """
    rows = label_prompts(generate_prompts(n, seed, mix=mix), temperature=temperature, seed=seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path
