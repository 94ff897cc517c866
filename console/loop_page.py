"""Page Loop: what flowed through the pipeline, what it cost, and how close the next retrain is."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from console.html import e, section, table
from console.svg import bar_chart, line_chart
from foundation.settings import Settings

# Stream tables and the topic that feeds each (schemas/events.py); "events per topic" reads them.
TOPIC_TABLES = {"toneflow.prompts": "prompts", "toneflow.exports": "exports", "toneflow.labels": "labels",
                "toneflow.accepted": "accepted_examples", "toneflow.dlq": "dlq"}
WINDOW_MIN = 60  # the per-minute chart shows the last hour of data (ending at the newest event)


@dataclass
class _Scans:
    """What the page needs from the two derived views, each read once: ``labels`` and
    ``accepted_examples`` de-duplicate against the prompts and exports views on every read
    (warehouse/views.py), so a second scan of either costs as much as the first."""

    per_minute: dict[str, dict[Any, int]]  # topic -> minute -> events, for labels and accepted
    slices: dict[str, int]  # accepted examples per look slice
    teacher: list[tuple[Any, int, int, int, int, float, int]]  # per teacher version (see _teacher)
    pending: int  # accepted examples the retrain trigger has not covered yet


def _scan(settings: Settings, con: Any, watermark: str) -> _Scans:
    from streams.trigger import PENDING_WHERE, pending_params

    per_minute: dict[str, dict[Any, int]] = {"toneflow.labels": {}, "toneflow.accepted": {}}
    slices: dict[str, int] = {}
    accepted_by_version: dict[Any, int] = {}
    pending = 0
    accepted = con.execute(
        f"SELECT date_trunc('minute', ts), look_slice, teacher_version, count(*), "
        f"count(*) FILTER (WHERE {PENDING_WHERE}) FROM accepted_examples GROUP BY ALL",
        pending_params(settings, watermark)).fetchall()
    for minute, look_slice, version, n, n_pending in accepted:
        _add(per_minute["toneflow.accepted"], minute, n)
        _add(slices, str(look_slice), n)
        _add(accepted_by_version, version, n)
        pending += int(n_pending)
    # The definitions of the warehouse view teacher_spend (warehouse/views.py), per teacher version
    # over all days: a call is a label neither cached nor reused from the served edit.
    labels = con.execute(
        "SELECT date_trunc('minute', ts), teacher_version, count(*), "
        "count(*) FILTER (WHERE NOT cached AND NOT reused_served_edit), count(*) FILTER (WHERE cached), "
        "count(*) FILTER (WHERE reused_served_edit), sum(prompt_tokens + completion_tokens), sum(cost) "
        "FROM labels GROUP BY ALL").fetchall()
    per_version: dict[Any, list[Any]] = {}
    for minute, version, n, calls, hits, reused, tokens, cost in labels:
        _add(per_minute["toneflow.labels"], minute, n)
        sums = per_version.setdefault(version, [0, 0, 0, 0, 0.0])
        for i, v in enumerate((calls, hits, reused, tokens, cost)):
            sums[i] += v or 0
    teacher = [(v, int(c), int(h), int(r), int(t), float(s), accepted_by_version.get(v, 0))
               for v, (c, h, r, t, s) in sorted(per_version.items(), key=lambda kv: str(kv[0]))]
    return _Scans(per_minute, slices, teacher, pending)


def _add(counts: dict[Any, int], key: Any, n: int) -> None:
    if key is not None:
        counts[key] = counts.get(key, 0) + int(n)


def _events(con: Any, scans: _Scans) -> str:
    # One pass per table: per-minute counts over all its data; the totals are their sum.
    per_minute = dict(scans.per_minute)
    for topic, tb in TOPIC_TABLES.items():
        if topic not in per_minute:
            rows = con.execute(f"SELECT date_trunc('minute', ts), count(*) FROM {tb} GROUP BY 1").fetchall()
            per_minute[topic] = {m: int(n) for m, n in rows if m is not None}
    newest = max((m for counts in per_minute.values() for m in counts), default=None)
    minutes = [] if newest is None else sorted({m for counts in per_minute.values() for m in counts
                                               if (newest - m).total_seconds() < WINDOW_MIN * 60})
    series = {t.split(".")[-1]: [float(per_minute[t].get(m, 0)) for m in minutes] for t in TOPIC_TABLES}
    chart = line_chart({k: v for k, v in series.items() if any(v)}, x_labels=[m.strftime("%H:%M") for m in minutes],
                       y_label="events / minute")
    tab = table(["topic", "table", "rows"], [(t, tb, sum(per_minute[t].values())) for t, tb in TOPIC_TABLES.items()])
    return section("Events per topic and minute (last hour of data)", chart + tab, "events")


def _dlq(con: Any) -> str:
    counts = con.execute("SELECT error_kind, count(*) FROM dlq GROUP BY 1 ORDER BY 2 DESC").fetchall()
    samples = con.execute(
        "SELECT error_kind, stage, error, left(raw, 120) FROM dlq "
        "QUALIFY row_number() OVER (PARTITION BY error_kind ORDER BY ts DESC) <= 2 ORDER BY 1").fetchall()
    body = bar_chart({str(k): float(n) for k, n in counts})
    body += "<h3>sample records</h3>" + table(["reason", "stage", "error", "raw (start)"],
                                               [(k, s, err, raw) for k, s, err, raw in samples])
    return section("Dead letters by reason", body, "dlq")


def _slices(scans: _Scans) -> str:
    return section("Accepted examples per look slice", bar_chart({s: float(n) for s, n in scans.slices.items()}),
                   "slices")


def _teacher(scans: _Scans) -> str:
    per = scans.teacher
    calls, hits, reused, tokens = (sum(p[i] for p in per) for i in range(1, 5))
    cost, n_accepted = sum(p[5] for p in per), sum(p[6] for p in per)
    summary = table(["calls", "cache hits", "reused served edits", "tokens", "spend USD", "accepted",
                     "USD / accepted"],
                    [(calls, hits, reused, tokens, cost, n_accepted, cost / n_accepted if n_accepted else None)])
    by_version = table(["teacher version", "calls", "cache hits", "reused", "tokens", "spend USD", "accepted"], per)
    return section("Teacher calls, cache hits and spend", summary + "<br>" + by_version, "teacher")


def _trigger(settings: Settings, state: dict[str, Any], scans: _Scans) -> str:
    n, threshold = scans.pending, settings.retrain_threshold
    share = min(1.0, n / threshold)
    body = (f"<p><b>{n:,}</b> new accepted examples (quality ≥ {settings.retrain_quality_floor}) of the "
            f"<b>{threshold:,}</b> that trigger a retrain</p><div class='bar' title='{share:.0%}'>"
            f"<div style='width:{share * 100:.1f}%'></div></div>"
            f"<p class='muted'>watermark {e(state['watermark'])}; fired {len(state.get('fired', []))} times</p>")
    return section("Retrain trigger", body, "trigger")


def _runs(settings: Settings) -> str:
    from foundation.osutil import pid_alive
    from trainer.registry import models_dir

    markers = []
    for path in (models_dir(settings) / "runs").glob("*.json"):
        try:
            markers.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue  # a marker being replaced right now: next refresh shows it
    markers.sort(key=lambda m: -float(m.get("at", 0)))
    rows = []
    for m in markers[:8]:
        status = m.get("status", "?")
        if status == "running" and m.get("pid") and not pid_alive(int(m["pid"])):
            status = "died"  # its process is gone; the next trigger takes the claim over (trainer/runs.py)
        rows.append((m.get("trigger_id"), status, m.get("version") or "", _ago(float(m.get("at", 0)))))
    running = next((m for m in markers if m.get("status") == "running"), None)
    tail = ""
    if running is not None:
        log = settings.data_path / "logs" / f"train-{running.get('trigger_id')}.log"
        if log.exists():
            lines = log.read_text(errors="replace").replace("\r", "\n").strip().splitlines()
            tail = f"<p>now: <code>{e(lines[-1][:200] if lines else '')}</code></p>"
    return section("Trainer runs", tail + table(["trigger", "status", "version", "when"], rows), "runs")


def _ago(at: float) -> str:
    import time

    if not at:
        return ""
    s = time.time() - at
    return f"{s:.0f} s ago" if s < 120 else f"{s / 60:.0f} min ago" if s < 7200 else f"{s / 3600:.1f} h ago"


def render(settings: Settings, con: Any) -> str:
    from streams.trigger import load_state

    state = load_state(settings)
    scans = _scan(settings, con, state["watermark"])
    return (_events(con, scans) + "<div class='grid'>" + _dlq(con) + _slices(scans) + "</div>"
            + _teacher(scans) + "<div class='grid'>" + _trigger(settings, state, scans) + _runs(settings) + "</div>")
