"""Bookkeeping around a training run: retrain-trigger idempotency and the warehouse tables.

Trigger idempotency (docs/reliability.md §7, like Dagster's run_key): the streams trigger derives
``trigger_id`` from the data it covers and may deliver it more than once; the first run claims
``models/runs/<trigger_id>.json`` with O_EXCL, a later run for a *finished* trigger is refused,
and a claim whose process died (crash mid-training) or whose run failed may be taken over. The
trainer service (``trainer/service.py``) reads these markers to tell a duplicate trigger from a new one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from foundation.osutil import atomic_write_json, pid_alive
from foundation.settings import Settings
from trainer.registry import manifest, models_dir, version_names

log = logging.getLogger(__name__)
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def _marker(settings: Settings, trigger_id: str) -> Path:
    return models_dir(settings) / "runs" / f"{_SAFE.sub('_', trigger_id)}.json"


def claim_trigger(settings: Settings, trigger_id: str) -> bool:
    """True if this process may train for ``trigger_id``; False if it was already trained or is running."""
    path = _marker(settings, trigger_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"trigger_id": trigger_id, "status": "running", "pid": os.getpid(), "host": socket.gethostname(),
              "at": time.time()}
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        existing = json.loads(path.read_text(encoding="utf-8") or "{}")
        if existing.get("status") == "failed" or _claimant_died(existing):
            log.warning("trigger %s: previous run (pid %s) %s; taking it over", trigger_id, existing.get("pid"),
                        "failed" if existing.get("status") == "failed" else "died")
            atomic_write_json(path, record)
            return True
        log.info("trigger %s already %s; not training again", trigger_id, existing.get("status"))
        return False
    with os.fdopen(fd, "w") as fh:
        json.dump(record, fh)
    return True


def _claimant_died(record: dict[str, Any]) -> bool:
    """A running claim from this host whose process is gone. Our own pid counts as gone: this process
    has no run in flight when it claims, and a restarted container often gets the same pid back."""
    if record.get("status") != "running" or record.get("host") != socket.gethostname():
        return False
    pid = int(record.get("pid", 0))
    return pid == os.getpid() or not pid_alive(pid)


def finish_trigger(settings: Settings, trigger_id: str, version: str) -> None:
    atomic_write_json(_marker(settings, trigger_id), {"trigger_id": trigger_id, "status": "done",
                                                      "version": version, "at": time.time()})


def fail_trigger(settings: Settings, trigger_id: str, error: str) -> None:
    """Record a run that raised; the trigger may be claimed again (by a later delivery or by hand)."""
    atomic_write_json(_marker(settings, trigger_id), {"trigger_id": trigger_id, "status": "failed",
                                                      "error": error[:500], "at": time.time()})


def release_trigger(settings: Settings, trigger_id: str) -> None:
    """Drop this process's running claim (a stop mid-run), so the redelivered trigger trains again."""
    record = trigger_record(settings, trigger_id)
    if record and record.get("status") == "running" and record.get("pid") == os.getpid():
        _marker(settings, trigger_id).unlink(missing_ok=True)


def trigger_record(settings: Settings, trigger_id: str) -> dict[str, Any] | None:
    """The marker of ``trigger_id`` (status running, done or failed), or None if it never ran."""
    try:
        return dict(json.loads(_marker(settings, trigger_id).read_text(encoding="utf-8") or "{}"))
    except (FileNotFoundError, ValueError):
        return None


def registered_for_trigger(settings: Settings, trigger_id: str) -> str | None:
    """The registered version trained for ``trigger_id``, if one is: a run killed after the registry
    commit but before its marker said done must not train (and register) a second model."""
    for version in reversed(version_names(settings)):
        if manifest(settings, version).get("config", {}).get("trigger_id") == trigger_id:
            return version
    return None


def trigger_records(settings: Settings) -> list[dict[str, Any]]:
    """Every trigger marker, oldest first."""
    root = models_dir(settings) / "runs"
    found = [trigger_record(settings, p.stem) for p in root.glob("*.json")] if root.exists() else []
    return sorted((r for r in found if r), key=lambda r: float(r.get("at", 0)))


def write_warehouse_rows(settings: Settings, outcome: dict[str, Any], meta: dict[str, Any], result: Any) -> None:
    """Write this run to the warehouse tables ``training_runs`` and ``model_evals`` (idempotent per key:
    one file per version, and per version and test set). The registry holds everything too; the
    warehouse copy is for SQL over history.
    """
    from warehouse.writer import write_rows

    version = outcome["version"]
    write_rows(settings, "training_runs", [{
        "run_id": f"{version}", "version": version, "student": meta["student"], "snapshot": meta["snapshot"],
        "parent": meta.get("parent"), "train_rows": meta["train_rows"], "fit_seconds": meta["fit"]["seconds"],
        "steps": meta["fit"]["steps"], "epochs": meta["fit"]["epochs"], "seed": meta["seed"],
        "promoted": bool(outcome.get("promoted")), "trained_at": meta["trained_at"], "config": json.dumps(meta["config"]),
        "ts": datetime.fromtimestamp(meta["trained_at"], UTC),
    }], key=version)
    rows = []
    rendered = result.rendered_summary() if hasattr(result, "rendered_summary") else {}
    requests = getattr(result, "requests", None)
    for subset, scores in result.subsets.items():
        row: dict[str, Any] = {"eval_id": f"{version}:{meta['test_set']}:{subset}", "version": version,
                               "ts": datetime.now(UTC),
                               "test_set": meta["test_set"], "subset": subset, "n": scores.n, "overall": scores.overall}
        for tool, t in scores.tools.items():
            row.update({f"{tool}_{k}": v for k, v in t.public().items()})
            row[f"{tool}_mae"] = t.mae
        # Rendered agreement per subset where measured (All and the look subsets); the real-request
        # accuracy belongs to the model, so every row of the run carries it.
        r = rendered.get(subset) or {}
        row["delta_e"] = r.get("delta_e")
        row["direction_agreement"] = r.get("direction_agreement")
        row["request_accuracy"] = requests.accuracy if requests is not None else None
        row["request_set"] = requests.set_id if requests is not None else None
        rows.append(row)
    write_rows(settings, "model_evals", rows, key=f"{version}-{meta['test_set']}")
