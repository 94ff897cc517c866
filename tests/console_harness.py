"""A demo-sized toneflow for the console's tests: thousands of real warehouse rows (written with
warehouse.writer from the event contracts), two students trained by the real trainer, online-gate
decisions from serving.rollout, and an A/B plan."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from foundation.settings import Settings
from schemas import validate_edit
from schemas.edit import look_slice
from schemas.events import AcceptedExample, DlqRecord, ExportEvent, LabelEvent, PromptEvent, ServedBy, SourceRef, TeacherRef
from tests.test_trainer_train import LOOKS  # the same four looks the trainer tests learn
from warehouse import tables
from warehouse.writer import write_batch

FRAMES = ("{p}", "make it {p}", "{p} please", "give me {p}", "{p} look", "{p} vibe", "i want {p}", "go for {p}",
          "{p} style", "a bit of {p}", "{p} feel", "try {p}", "more {p}", "{p} tones", "{p} mood", "just {p}")
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=50)
TEACHER = TeacherRef(model="offline", version="t1")


def training_file(path: Path, frames: tuple[str, ...] = FRAMES) -> Path:
    rows = [{"prompt": f.format(p=p), "edit": e, "exporters": 1 + i % 6}
            for p, e in LOOKS.items() for i, f in enumerate(frames)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _batch(settings: Settings, table: str, topic: str, rows: list, chunk: int = 500) -> None:
    for start in range(0, len(rows), chunk):
        part = [r(tables.Source(topic, 0, start + k)) for k, r in enumerate(rows[start:start + chunk])]
        write_batch(settings, table, part, topic=topic, partition=0, first_offset=start,
                    last_offset=start + len(part) - 1)


def fill_warehouse(settings: Settings, projects: int = 2000, seed: int = 0) -> dict[str, int]:
    """Prompts, labels, exports, accepted examples and dead letters of ``projects`` simulated projects,
    spread over the last 50 minutes. Returns the rows written per table."""
    rng = random.Random(seed)
    prompts, labels, exports, accepted, dlq = [], [], [], [], []
    for i in range(projects):
        look = rng.choice(list(LOOKS))
        text = rng.choice(FRAMES).format(p=look)
        edit = validate_edit(LOOKS[look])
        ts = T0 + timedelta(seconds=rng.uniform(0, 50 * 60))
        variant = "baseline" if i < projects // 2 else rng.choice(["teacher", "student-v000001"])
        served = ServedBy(kind="teacher" if variant != "student-v000001" else "student",
                          model="offline" if variant != "student-v000001" else "minilm",
                          version="t1" if variant != "student-v000001" else "v000001", variant=variant)
        pid, uid = f"p{i}", f"u{i % 97}"
        p = PromptEvent(event_id=f"pe{i}", project_id=pid, user_id=uid, ts=ts, prompt=text, served_by=served,
                        served_edit=edit)
        prompts.append(lambda src, p=p: tables.prompt_row(p, src))
        cached = rng.random() < 0.3
        lab = LabelEvent(event_id=f"pe{i}", project_id=pid, user_id=uid, prompt=text, prompt_ts=ts, teacher=TEACHER,
                         edit=edit, latency_ms=rng.uniform(5, 50), prompt_tokens=0 if cached else 120,
                         completion_tokens=0 if cached else 40, cost=0.0 if cached else 0.00004, cached=cached,
                         served_by=served, served_edit=edit, ts=ts + timedelta(seconds=2))  # as the labeler copies them
        labels.append(lambda src, lab=lab: tables.label_row(lab, src))
        if rng.random() < 0.6:
            ex = ExportEvent(event_id=f"ex{i}", project_id=pid, user_id=uid, ts=ts + timedelta(seconds=30))
            exports.append(lambda src, ex=ex: tables.export_row(ex, src))
            acc = AcceptedExample(event_id=f"pe{i}", project_id=pid, user_id=uid, prompt=text, edit=edit,
                                  label_source="teacher", teacher_edit=edit, teacher=TEACHER, teacher_tokens=160,
                                  teacher_cost=0.00004, look_slice=look_slice(edit), served_by=served,
                                  served_edit=edit, export_event_id=f"ex{i}", prompt_ts=ts,
                                  export_ts=ts + timedelta(seconds=30), ts=ts + timedelta(seconds=31))
            accepted.append(lambda src, acc=acc: tables.accepted_row(acc, src))
        if i % 40 == 0:
            kind = rng.choice(["schema_violation", "bad_json", "teacher_failed"])
            d = DlqRecord(stage="labeler.decode", error_kind=kind, error=f"{kind} in record {i}",
                          source=SourceRef(topic="toneflow.prompts", partition=0, offset=100_000 + i),
                          raw='{"prompt": 42}', ts=ts)
            dlq.append(lambda src, d=d: tables.dlq_row(d, src))
    _batch(settings, "prompts", "toneflow.prompts", prompts)
    _batch(settings, "labels", "toneflow.labels", labels)
    _batch(settings, "exports", "toneflow.exports", exports)
    _batch(settings, "accepted_examples", "toneflow.accepted", accepted)
    _batch(settings, "dlq", "toneflow.dlq", dlq)
    return {"prompts": len(prompts), "labels": len(labels), "exports": len(exports), "accepted_examples": len(accepted),
            "dlq": len(dlq)}


def train_two_students(settings: Settings, work: Path) -> list[str]:
    """Two versions by the real trainer (frozen encoder, 2 epochs): v000001, then an incremental v000002."""
    from trainer.config import TrainConfig
    from trainer.train import main

    base = {"finetune": "frozen", "epochs": 2, "progress": False, "auto_augment": False, "max_minutes": 0}
    first = main(TrainConfig(input=str(training_file(work / "a.jsonl", FRAMES[:10])), **base), settings)  # type: ignore[arg-type]
    second = main(TrainConfig(input=str(training_file(work / "b.jsonl")), incremental=True, margin=1.0,  # type: ignore[arg-type]
                              **base), settings)
    return [first["version"], second["version"]]
