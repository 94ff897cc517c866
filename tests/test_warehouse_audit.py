"""``toneflow warehouse audit`` on the embedded broker: records on the topic = table rows + DLQ rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Producer

from foundation.kafka import producer_config
from schemas.events import TOPIC_DLQ, TOPIC_EXPORTS, TOPIC_PROMPTS, ExportEvent, PromptEvent, to_json_bytes
from streams.codec import Raw, decode
from warehouse import tables
from warehouse.audit import audit
from warehouse.writer import write_batch

pytestmark = pytest.mark.broker
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def produce(settings, topic: str, partition: int, values: list[bytes]) -> list[Raw]:
    """Send ``values`` to one partition; the records as the broker stored them (with offsets)."""
    producer = Producer(producer_config(settings))
    stored: list[Raw] = []

    def done(err, msg):
        assert err is None, err
        stored.append(Raw(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value()))

    for value in values:
        producer.produce(topic, value=value, key=b"p", partition=partition, on_delivery=done)
    assert producer.flush(10) == 0
    return sorted(stored, key=lambda r: r.offset)


def sink(settings, raws: list[Raw], model, table: str) -> list[Raw]:
    """What a sink does: decoded records become rows (one file per batch); the bad ones are returned."""
    rows, bad = [], []
    for raw in raws:
        event, dead = decode(raw, model, "test")
        if dead is None:
            rows.append(tables.to_row(table, event, tables.Source(raw.topic, raw.partition, raw.offset)))
        else:
            bad.append(dead)
    if rows:
        write_batch(settings, table, rows, topic=raws[0].topic, partition=raws[0].partition,
                    first_offset=rows[0]["src_offset"], last_offset=rows[-1]["src_offset"])
    return bad


def dead_letter(settings, dlq_records) -> None:
    """What the labeler and DLQ sink do: each DLQ record goes on toneflow.dlq, then into the dlq table."""
    stored = produce(settings, TOPIC_DLQ, 0, [to_json_bytes(d) for d in dlq_records])
    from schemas.events import DlqRecord

    assert sink(settings, stored, DlqRecord, "dlq") == []


def prompt(i: int, text: str = "warm") -> bytes:
    return to_json_bytes(PromptEvent(event_id=f"e{i}", project_id="p", user_id="u", ts=T0 + timedelta(minutes=i),
                                     prompt=text))


def cli(settings, *args):
    env = {**os.environ, "TONEFLOW_DATA_DIR": str(settings.data_dir), "TONEFLOW_KAFKA_BOOTSTRAP": settings.kafka_bootstrap}
    return subprocess.run([sys.executable, "-m", "toneflow", "warehouse", "audit", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def by_partition(results):
    return {(r.topic, r.partition): r for r in results}


def test_audit_balances_rows_and_dlq_then_lists_the_gaps(fresh_broker_settings):
    s = fresh_broker_settings
    p0 = produce(s, TOPIC_PROMPTS, 0, [prompt(0), prompt(1), b"\x00not json", prompt(3), prompt(1, "conflicting"),
                                       prompt(5)])
    bad = sink(s, p0[:3], PromptEvent, "prompts") + sink(s, p0[3:], PromptEvent, "prompts")
    sink(s, p0[1:4], PromptEvent, "prompts")  # a replay cut differently: offsets count once
    assert [d.error_kind for d in bad] == ["not_json"]
    dead_letter(s, bad)
    x2 = produce(s, TOPIC_EXPORTS, 2, [to_json_bytes(ExportEvent(event_id="x", project_id="p", user_id="u", ts=T0))])
    sink(s, x2, ExportEvent, "exports")

    results = by_partition(audit(s))
    assert all(r.ok for r in results.values()), [r for r in results.values() if not r.ok]
    p = results[(TOPIC_PROMPTS, 0)]
    assert (p.records, p.rows, p.dlq_only, p.missing, p.gaps) == (6, 5, 1, 0, [])
    assert results[(TOPIC_DLQ, 0)].rows == 1 and results[(TOPIC_EXPORTS, 2)].rows == 1
    ok = cli(s, "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["ok"] is True

    # Records the warehouse never got: one at the end of p0, the first and last three of p3.
    produce(s, TOPIC_PROMPTS, 0, [prompt(6)])
    p3 = produce(s, TOPIC_PROMPTS, 3, [prompt(10 + i) for i in range(8)])
    sink(s, p3[1:5], PromptEvent, "prompts")
    results = by_partition(audit(s))
    assert (results[(TOPIC_PROMPTS, 0)].missing, results[(TOPIC_PROMPTS, 0)].gaps) == (1, [(6, 6)])
    p = results[(TOPIC_PROMPTS, 3)]
    assert (p.records, p.rows, p.missing, p.gaps) == (8, 4, 4, [(0, 0), (5, 7)])
    failed = cli(s)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "audit FAILED: 5 records" in failed.stdout and "5-7" in failed.stdout
