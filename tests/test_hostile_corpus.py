"""A hostile corpus through a running worker: it stays up, and every record is a row or a DLQ row.

The corpus mixes valid events with the values that crashed workers before (issue 16): timestamps
past what ``astimezone`` handles, token counts beyond int64, NaN/Infinity, lone surrogates,
NUL-heavy junk whose DLQ excerpt grows sixfold when escaped, deep nesting, oversize values, empty
values, and valid values at every bound. ``warehouse.audit`` then checks the accounting invariant.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter

import pytest

from schemas.events import MAX_TOKENS, TOPIC_ACCEPTED, TOPIC_EXPORTS, TOPIC_LABELS, TOPIC_PROMPTS
from streams.producer import EventProducer
from tests.streams_harness import start_worker, stop
from warehouse.audit import audit
from warehouse.catalog import connect

pytestmark = [pytest.mark.broker, pytest.mark.slow]
N_RECORDS = 1000
_CHARS = ["a", "é", " ", "\x00", "\x01", "\x1f", "\u2028", "\ufeff", "😀", "\\", '"', "\u200b"]


def _text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_CHARS) for _ in range(n))


def hostile_corpus(n: int, seed: int = 16) -> list[tuple[str, str | None, bytes | None]]:
    rng = random.Random(seed)
    out: list[tuple[str, str | None, bytes | None]] = []
    for i in range(n):
        project = f"h-{i:05d}"
        prompt = {"schema_version": 1, "event_id": f"e{i}", "project_id": project, "user_id": "u",
                  "ts": "2026-11-25T10:00:00Z", "prompt": _text(rng, rng.randint(1, 60)) or "x"}
        label = {**{k: prompt[k] for k in ("schema_version", "event_id", "project_id", "user_id", "prompt")},
                 "prompt_ts": prompt["ts"], "teacher": {"model": "m", "version": "v"},
                 "edit": {"adjust": {"contrast": 10}}, "latency_ms": 1.0}
        kind = i % 16
        key: str | None = project if rng.random() < 0.8 else None
        topic, value = TOPIC_PROMPTS, None
        if kind == 0:
            value = json.dumps(prompt).encode()
        elif kind == 1:  # the export of the previous (valid) prompt's project: the join accepts it
            topic, key = TOPIC_EXPORTS, f"h-{i - 1:05d}"
            value = json.dumps({"schema_version": 1, "event_id": f"x{i}", "project_id": key, "user_id": "u",
                                "ts": "2026-11-25T10:05:00Z"}).encode()
        elif kind == 2:
            value = json.dumps({**prompt, "ts": "9999-12-31T23:00:00-05:00"}).encode()
        elif kind == 3:
            value = json.dumps({**prompt, "ts": "0001-01-01T00:00:00+05:00"}).encode()
        elif kind == 4:
            value = json.dumps({**prompt, "prompt": "golden \ud800 hour"}).encode()  # ASCII-escaped lone surrogate
        elif kind == 5:
            topic, value = TOPIC_LABELS, (json.dumps(label)[:-1] + ', "cost": Infinity}').encode()
        elif kind == 6:
            topic, value = TOPIC_LABELS, json.dumps({**label, "prompt_tokens": 1e20}).encode()
        elif kind == 7:
            value = b"\x00" * 60_000
        elif kind == 8:
            value = b"[" * 30_000 + b"]" * 30_000  # under the 64 KB record limit, far over the parser depth
        elif kind == 9:
            value = json.dumps({**prompt, "event_id": 10**30}).encode()
        elif kind == 10:
            value = None
        elif kind == 11:
            value = json.dumps({**prompt, "prompt": "x" * 70_000}).encode()
        elif kind == 12:  # valid, at the timestamp bounds
            value = json.dumps({**prompt, "ts": rng.choice(["1970-01-01T00:00:00Z", "2999-12-30T00:00:00-23:59"])}).encode()
        elif kind == 13:  # valid, at the size bounds
            value = json.dumps({**prompt, "event_id": "e" * 128, "project_id": project + "p" * (128 - len(project)),
                                "prompt": "😀" * 500}).encode()
        elif kind == 14:  # a hostile producer on an internal topic, valid at the integer bounds
            topic = TOPIC_LABELS
            value = json.dumps({**label, "prompt_tokens": MAX_TOKENS, "completion_tokens": MAX_TOKENS, "cost": 1e300,
                                "source": {"topic": TOPIC_PROMPTS, "partition": 2**31 - 1, "offset": 2**63 - 1}}).encode()
        else:
            value = json.dumps({**prompt, "served_by": {"kind": "teacher", "model": "forged", "version": "v",
                                                        "variant": "A"},
                                "served_edit": {"adjust": {"contrast": 100}}}).encode()  # unsigned: relabelled
        out.append((topic, key, value))
    return out


def test_a_hostile_corpus_crashes_nothing_and_every_record_is_accounted_for(fresh_broker_settings, tmp_path):
    settings = fresh_broker_settings
    corpus = hostile_corpus(N_RECORDS)
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log)
    try:
        with EventProducer(settings) as producer:
            for n, (topic, key, value) in enumerate(corpus):
                producer.send_raw(topic, key, value, f"h{n}")  # type: ignore[arg-type]
        sent = Counter(topic for topic, _, _ in corpus)
        deadline, results = time.monotonic() + 200, []
        while time.monotonic() < deadline:
            assert worker.poll() is None, "the worker died:\n" + log.read_text()[-3000:]
            try:
                results = audit(settings)
            except Exception:  # noqa: BLE001 - a file replaced mid-read, or the topics not there yet
                results = []
            on_log = Counter()
            for r in results:
                on_log[r.topic] += r.records
            if (results and all(r.ok for r in results) and on_log[TOPIC_PROMPTS] == sent[TOPIC_PROMPTS]
                    and on_log[TOPIC_EXPORTS] == sent[TOPIC_EXPORTS] and on_log[TOPIC_ACCEPTED] > 0):
                break
            time.sleep(2)
        assert worker.poll() is None, "the worker died:\n" + log.read_text()[-3000:]
    finally:
        stop(worker)
    bad = [r for r in results if not r.ok]
    assert results and not bad, bad
    by_topic: Counter[str] = Counter()
    for r in results:
        by_topic[r.topic] += r.records
    assert by_topic[TOPIC_PROMPTS] == sent[TOPIC_PROMPTS] and by_topic[TOPIC_EXPORTS] == sent[TOPIC_EXPORTS]
    assert by_topic[TOPIC_LABELS] >= sent[TOPIC_LABELS] and by_topic[TOPIC_ACCEPTED] > 0
    assert sum(sent.values()) == N_RECORDS
    kinds = dict(connect(settings).execute("SELECT error_kind, count(*) FROM dlq GROUP BY 1").fetchall())
    print("records per topic:", dict(by_topic), "dlq by kind:", kinds)
    assert {"schema_violation", "not_json", "too_deep", "oversize", "empty_record"} <= set(kinds)
