"""Train a student, evaluate it on the (pinned) test set, register it, promote it if it passes the gate.

CPU (the default MiniLM student, LoRA)::

    toneflow train --input data/labelled.jsonl                 # snapshot a file, train, gate, promote
    toneflow train --snapshot latest --epochs 6 --max-minutes 10
    toneflow train --incremental --trigger-id t-0042           # what the streams retrain trigger runs

GPU (generative students as in the paper; 4-bit needs CUDA + bitsandbytes)::

    toneflow train --snapshot latest --student seq2seq --base-model google/flan-t5-base
    toneflow train --snapshot latest --student causal --base-model meta-llama/Llama-2-7b-chat-hf --load-in-4bit

``main(cfg)`` is the whole job and has no argparse in it; ``trainer.cli`` parses flags/YAML
into a ``TrainConfig`` and calls it. Heavy imports happen inside.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import asdict
from typing import Any

from foundation.failpoints import failpoint
from foundation.settings import Settings, get_settings
from trainer import registry, snapshot
from trainer.config import DEFAULT_BASE_MODELS, TrainConfig, lora_modules
from trainer.data import Example
from trainer.exceptions import GateRejected, NothingNew, TrainerError

log = logging.getLogger(__name__)


def build_student(kind: str, cfg: TrainConfig, seed: int) -> Any:
    """A fresh, untrained student of ``kind`` configured from ``cfg``."""
    from trainer.students.base import FitConfig

    fit = FitConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, patience=cfg.patience,
                    max_steps=cfg.max_steps, max_minutes=cfg.max_minutes, seed=seed, progress=cfg.progress)
    base = cfg.base_model or DEFAULT_BASE_MODELS[kind]
    if kind == "minilm":
        from trainer.students.minilm import MiniLMConfig, MiniLMStudent

        return MiniLMStudent(MiniLMConfig(model=base, finetune=cfg.finetune, lora_r=cfg.lora_r,  # type: ignore[arg-type]
                                          lora_alpha=2 * cfg.lora_r, lora_targets=lora_modules(cfg.lora_targets),
                                          pooling=cfg.pooling,  # type: ignore[arg-type]
                                          heads=cfg.heads, sign_weight=cfg.sign_weight,  # type: ignore[arg-type]
                                          layers=cfg.layers, layer_pick=cfg.layer_pick,  # type: ignore[arg-type]
                                          val_metric=cfg.val_metric,  # type: ignore[arg-type]
                                          fit=fit))
    from trainer.students.generative import GenConfig, student_for

    return student_for(kind, GenConfig(model=base, finetune=cfg.finetune, lora_r=cfg.lora_r,
                                       load_in_4bit=cfg.load_in_4bit, fit=fit))


def resolve_snapshot(settings: Settings, cfg: TrainConfig) -> snapshot.Snapshot:
    """The snapshot to train on: --snapshot, else a new one from --input, else from the warehouse."""
    from trainer import sources
    from trainer.augment import auto_augment
    from trainer.labels import apply_policy

    if cfg.snapshot:
        snap = snapshot.load(settings, cfg.snapshot)
        snapshot.verify(snap)
        return snap
    if cfg.input:
        cands, served = sources.from_file(cfg.input)
        source: dict[str, Any] = {"kind": "file", "path": str(cfg.input)}
    else:
        cands, served = sources.from_warehouse(settings)
        source = {"kind": "warehouse", "accepted": len(cands)}
    rows = apply_policy(cands, cfg.policy, served=served, min_served=settings.label_min_served)  # type: ignore[arg-type]
    augmented = auto_augment(rows, settings) if cfg.auto_augment else []
    seed = settings.seed if cfg.seed is None else cfg.seed
    if cfg.contrastive:
        from trainer.contrastive import contrastive_rows

        kinds = [k.strip() for k in cfg.contrastive_kinds.split(",") if k.strip()]
        augmented += contrastive_rows(rows, settings, seed=seed,
                                      taken={r.prompt_norm for r in augmented}, kinds=kinds)
    if cfg.auto_augment and cfg.library_rows:
        from trainer.library_rows import library_rows

        augmented += library_rows(rows, settings, seed=seed, per_phrase=cfg.library_per_phrase,
                                  taken={r.prompt_norm for r in augmented})
    if cfg.auto_augment and cfg.pool_rows:
        from trainer.pool_rows import pool_rows

        augmented += pool_rows(rows, settings, n=cfg.pool_rows, seed=seed, taken={r.prompt_norm for r in augmented})
    if cfg.auto_augment and cfg.grammar_rows:
        from trainer.grammar_rows import grammar_rows

        augmented += grammar_rows(rows, settings, n=cfg.grammar_rows, seed=seed,
                                  taken={r.prompt_norm for r in augmented})
    return snapshot.create(settings, rows, policy=cfg.policy, source=source, augmented=augmented)


def incremental_rows(settings: Settings, snap: snapshot.Snapshot, parent: str, replay: float,
                     seed: int) -> list[Example]:
    """Rows new since the parent model's snapshot, plus ``replay`` × as many older rows (sampled)."""
    rows = snap.rows("train")
    parent_snap = registry.manifest(settings, parent).get("snapshot")
    try:
        seen = {r.id for r in snapshot.load(settings, parent_snap).rows("train")} if parent_snap else set()
    except TrainerError:
        seen = set()  # the parent's snapshot is gone: treat everything as new
    new = [r for r in rows if r.id not in seen]
    if not new:
        msg = f"no new training rows in snapshot {snap.id} since model {parent}; nothing to do"
        raise NothingNew(msg)
    old = [r for r in rows if r.id in seen]
    k = min(len(old), int(round(replay * len(new))))
    return new + random.Random(seed).sample(old, k)


def trained_rows(settings: Settings, version: str) -> list[Example]:
    """The training rows of ``version``'s snapshot (empty when that snapshot is gone)."""
    snap_id = registry.manifest(settings, version).get("snapshot")
    try:
        return snapshot.load(settings, snap_id).rows("train") if snap_id else []
    except TrainerError:
        return []


def _ensure_eval(settings: Settings, version: str, test_id: str, rows: list[Example]) -> dict[str, Any]:
    """``version``'s recorded eval on ``test_id``, computed now if missing or older than the gate's
    criteria (no rendered agreement, or real requests measured on another request set)."""
    from trainer.evaluate import evaluate_student
    from trainer.requests import default_requests, set_id

    requests = default_requests(settings)[1]
    found = registry.read_eval(settings, version, test_id)
    if found is None or "rendered" not in found or (found.get("requests") or {}).get("set") != set_id(requests):
        found = evaluate_student(registry.load_student(settings, version), rows,
                                 train_rows=trained_rows(settings, version), requests=requests).record()
        registry.record_eval(settings, version, test_id, found)
    return found


def gate_eval(settings: Settings, version: str) -> str:
    """Make sure ``version`` and the current model are both evaluated on the gate's test set
    (the pinned benchmark, else ``version``'s own snapshot test split); returns its id."""
    snap = snapshot.load(settings, registry.manifest(settings, version).get("snapshot") or "latest")
    test_id, rows = snapshot.benchmark_set(settings, snap)
    _ensure_eval(settings, version, test_id, rows)
    cur = registry.read_current(settings)
    if cur is not None:
        _ensure_eval(settings, cur["version"], test_id, rows)
    return test_id


def _honest_numbers(result: Any) -> dict[str, Any]:
    """The look subsets, rendered agreement and real requests of an eval, flat for the outcome."""
    rendered = result.rendered_summary().get("All", {})
    out: dict[str, Any] = {f"{k}_overall": result.subsets[k].overall for k in ("seen_looks", "unseen_looks")
                           if k in result.subsets}
    out.update({f"{k}_ceiling": v for k, v in result.ceilings().items() if k != "All"})
    if result.group_balanced is not None:
        out["group_balanced_overall"] = result.group_balanced
    if rendered:
        out.update(delta_e=rendered["delta_e"], direction_agreement=rendered["direction_agreement"])
    if result.requests is not None:
        out["request_accuracy"] = result.requests.accuracy
    return out


def main(cfg: TrainConfig, settings: Settings | None = None) -> dict[str, Any]:
    """Run one training job; returns a summary (version, metrics, whether it was promoted)."""
    from trainer.evaluate import evaluate_student, honest_table, paper_table
    from trainer.report import write_report
    from trainer.requests import default_requests
    from trainer.runs import claim_trigger, finish_trigger, write_warehouse_rows
    from trainer.students import student_class
    from trainer.students.base import seed_everything, set_threads

    settings = settings or get_settings()
    registry.gc(settings)  # a SIGKILLed train leaves its staged model (~90 MB) behind
    seed = settings.seed if cfg.seed is None else cfg.seed
    kind = cfg.student or settings.student
    threads = set_threads(settings.torch_threads if cfg.threads is None else cfg.threads)
    log.info("training on %d CPU thread(s)", threads)
    seed_everything(seed)
    if cfg.trigger_id and not claim_trigger(settings, cfg.trigger_id):
        return {"skipped": True, "reason": f"trigger {cfg.trigger_id} was already trained"}
    started = time.time()
    clock = _Clock()
    snap = resolve_snapshot(settings, cfg)
    clock.lap("snapshot")
    train, val = snap.rows("train"), snap.rows("validation")
    if not val:
        val = train[: max(1, len(train) // 10)]  # tiny data: validate on a train slice rather than not at all
        log.warning("snapshot %s has no validation rows; early stopping watches a train slice", snap.id)
    parent = None
    cur = registry.read_current(settings) if cfg.incremental else None
    if cfg.incremental and cur is None:
        # The first retrain of a fresh system: nothing to continue from, so train from scratch.
        log.warning("--incremental but no current model yet: training a new %s student", kind)
    if cur is not None:
        parent = cur["version"]
        kind = registry.manifest(settings, parent)["student"]
        try:
            train = incremental_rows(settings, snap, parent, cfg.replay, seed)
        except NothingNew as err:
            if cfg.trigger_id:
                finish_trigger(settings, cfg.trigger_id, parent)
            return {"skipped": True, "reason": str(err)}
        student = student_class(kind).load(registry.model_path(settings, parent))
    else:
        student = build_student(kind, cfg, seed)
    clock.lap("load")
    report = student.fit(train, val)
    clock.lap("fit")
    test_id, test_rows = snapshot.benchmark_set(settings, snap)
    if cfg.augment:
        from trainer.augment import augment_round, held_out_screen

        # New rows whose intent group is held out are dropped, as snapshot.create drops augmented rows.
        held_out = [*snap.rows("validation"), *snap.rows("test"), *test_rows]
        student, train, report = augment_round(student, train, val, settings,
                                               make_student=lambda: build_student(kind, cfg, seed), seed=seed,
                                               screen=held_out_screen(snap.rows("train"), held_out))
        clock.lap("augment round")

    result = evaluate_student(student, test_rows, train_rows=snap.rows("train"),
                              requests=default_requests(settings)[1])
    clock.lap("eval")
    staged = registry.stage(settings)
    student.save(staged)
    meta = {"student": kind, "snapshot": snap.id, "parent": parent, "test_set": test_id, "seed": seed,
            "threads": threads, "config": asdict(cfg), "fit": report.as_dict(), "metrics": result.record(),
            "train_rows": len(train), "trained_at": started}
    write_report(staged / "report", result, title=f"{kind} on {snap.id}", context={
        "snapshot": snap.id, "test set": test_id, "train rows": len(train), "parent": parent})
    version = registry.commit(settings, staged, meta)
    failpoint("train.after_register")  # registered, trigger not yet marked done: trainer/service.py recovers it
    registry.record_eval(settings, version, test_id, result.record())
    clock.lap("register")
    outcome: dict[str, Any] = {"version": version, "student": kind, "snapshot": snap.id, "test_set": test_id,
                               "overall": result.overall, "n_test": len(test_rows), "train_rows": len(train),
                               "fit_seconds": report.seconds, "fit_phases": dict(report.phases), "threads": threads,
                               "promoted": False, **_honest_numbers(result)}
    if cfg.promote:
        cur = registry.read_current(settings)
        if cur is not None:
            outcome["current_overall"] = _ensure_eval(settings, cur["version"], test_id, test_rows)["overall"]
        try:
            outcome.update(registry.promote(settings, version, test_set=test_id, margin=cfg.margin))
        except GateRejected as err:
            outcome["reason"] = str(err)
        clock.lap("gate + export")
    outcome["table"] = (paper_table([(f"{kind} {version}", result.subsets)]) + "\n\n"
                        + honest_table(result, f"{kind} {version}"))
    write_warehouse_rows(settings, outcome, meta, result)
    if cfg.trigger_id:
        finish_trigger(settings, cfg.trigger_id, version)
    outcome["job_seconds"] = clock.lap("warehouse")
    outcome["timings"] = clock.laps
    return outcome


class _Clock:
    """Wall seconds of each step of the job, in order (``outcome["timings"]``)."""

    def __init__(self) -> None:
        self.start = self.last = time.monotonic()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> float:
        """Record the time since the previous lap under ``name``; returns the job's total so far."""
        now = time.monotonic()
        self.laps[name] = self.laps.get(name, 0.0) + now - self.last
        self.last = now
        return now - self.start


def timing_line(outcome: dict[str, Any]) -> str:
    """"job 12.8 min on 2 CPU thread(s): snapshot 31 s, fit 600 s (cache 41 s, heads 63 s, lora 494 s), eval 70 s, ..."."""
    phases = ", ".join(f"{k} {v:.0f} s" for k, v in (outcome.get("fit_phases") or {}).items())
    parts = [f"{k} {v:.0f} s" + (f" ({phases})" if k == "fit" and phases else "")
             for k, v in (outcome.get("timings") or {}).items()]
    threads = f" on {outcome['threads']} CPU thread(s)" if outcome.get("threads") else ""
    return f"job {outcome.get('job_seconds', 0.0) / 60:.1f} min{threads}: " + ", ".join(parts)
