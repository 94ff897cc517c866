"""The demo report's section on retrain triggers: which ones the trainer service ran, and how."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def trigger_section(settings: Any, seen: dict[str, str] | None) -> list[str]:
    """Markdown lines: one row per trigger marker (``trainer/runs.py``), then the service's own lines."""
    from trainer.runs import trigger_records

    # "running" at report time: a later trigger (fired by the A/B traffic) is still training.
    status = {"running": "running (in flight)"}
    rows = [f"| {r['trigger_id']} | {status.get(r['status'], r['status'])} | {r.get('version') or r.get('error', '')} | "
            f"{datetime.fromtimestamp(float(r['at']), UTC):%H:%M:%S} |" for r in trigger_records(settings)]
    lines = ["## Retrain triggers run by the trainer service", "",
             "| trigger id | status | model | recorded at (UTC) |", "|---|---|---|---|", *rows, ""]
    if seen:
        lines += [f"Trigger {seen['id']} on `toneflow.retrain`, as the trainer service (`toneflow trainer`) "
                  "logged it:", "", "```", seen["received"], seen.get("result", "(no result yet)"), "```", ""]
    return lines
