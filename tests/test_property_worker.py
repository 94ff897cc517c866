"""The accounting invariant through a running worker, on corpora drawn from the contracts (issue 16).

Black box: records go onto the prompt, label and export topics, the warehouse is read back, and
nothing in between is looked at, so the test holds whatever engine the worker runs. One worker
takes several corpora in turn (tests/contract_strategies.py: valid records at the contracts'
extremes sharing project and event ids, near-valid mutations, junk); after each it must still be
running, and for every topic ``warehouse.audit`` must balance: records on the topic = offsets with
a table row + offsets only in the DLQ, with no gaps. Which records are valid is the contract's
call (streams/codec.py ``decode``, the one definition every consumer uses), so the audit must
also show a row for each valid record and a dead letter for each invalid one.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from confluent_kafka import Producer
from hypothesis import strategies as st

from foundation.kafka import producer_config
from schemas.events import TOPIC_ACCEPTED, TOPIC_DLQ, TOPIC_EXPORTS, TOPIC_LABELS, TOPIC_PROMPTS
from streams.codec import Raw, decode
from tests.contract_strategies import TOPIC_MODEL, draw_many, topic_record
from tests.streams_harness import start_worker, stop
from warehouse.audit import PartitionAudit, audit
from warehouse.catalog import connect

pytestmark = [pytest.mark.broker, pytest.mark.slow]
CORPORA, PER_CORPUS = 3, 120
WAIT_S = 150.0


def _produce(settings, records: list[tuple[str, bytes | None, bytes | None]]) -> None:
    producer = Producer(producer_config(settings))
    failed: list[str] = []
    for topic, key, value in records:
        producer.produce(topic, key=key, value=value, on_delivery=lambda err, _m: failed.append(str(err)) if err else None)
        producer.poll(0)
    assert producer.flush(30) == 0 and not failed, failed


def _valid(topic: str, key: bytes | None, value: bytes | None) -> bool:
    return decode(Raw(topic, 0, 0, key, value), TOPIC_MODEL[topic], "oracle")[1] is None


def _totals(results: list[PartitionAudit]) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = {}
    for r in results:
        c = out.setdefault(r.topic, Counter())
        c.update(records=r.records, rows=r.rows, dlq_only=r.dlq_only, missing=r.missing, ahead=r.ahead)
    return out


def test_every_drawn_record_is_a_row_or_a_dead_letter_and_the_worker_stays_up(fresh_broker_settings, tmp_path):
    settings = fresh_broker_settings
    pool = draw_many(st.sampled_from(list(TOPIC_MODEL)).flatmap(topic_record), CORPORA * PER_CORPUS)
    corpora = [pool[i::CORPORA] for i in range(CORPORA)]
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log)
    sent: Counter[str] = Counter()
    valid: Counter[str] = Counter()
    try:
        for n, corpus in enumerate(corpora):
            _produce(settings, corpus)
            sent.update(topic for topic, _, _ in corpus)
            valid.update(topic for topic, key, value in corpus if _valid(topic, key, value))
            deadline, totals, results = time.monotonic() + WAIT_S, {}, []
            while time.monotonic() < deadline:
                assert worker.poll() is None, f"the worker died on corpus {n}:\n" + log.read_text()[-3000:]
                try:
                    results = audit(settings)
                except Exception:  # noqa: BLE001 - a file replaced mid-read: ask again
                    results = []
                totals = _totals(results)
                if (results and all(r.ok for r in results)
                        and all(totals.get(t, Counter())["records"] == sent[t] for t in (TOPIC_PROMPTS, TOPIC_EXPORTS))
                        # every valid prompt has been labelled (the offline teacher fails none)
                        and totals.get(TOPIC_LABELS, Counter())["records"] >= sent[TOPIC_LABELS] + valid[TOPIC_PROMPTS]):
                    break
                time.sleep(1.0)
            assert worker.poll() is None, f"the worker died on corpus {n}:\n" + log.read_text()[-3000:]
            bad = [r for r in results if not r.ok]
            assert results and not bad, (n, bad)
            for topic in (TOPIC_PROMPTS, TOPIC_EXPORTS):
                t = totals[topic]
                assert (t["records"], t["rows"], t["dlq_only"]) == (sent[topic], valid[topic], sent[topic] - valid[topic]), \
                    (n, topic, t)
            labels = totals[TOPIC_LABELS]
            assert labels["records"] >= sent[TOPIC_LABELS] + valid[TOPIC_PROMPTS], (n, labels)
            assert labels["dlq_only"] == sent[TOPIC_LABELS] - valid[TOPIC_LABELS], (n, labels)  # the labeler's are valid
            for topic in (TOPIC_ACCEPTED, TOPIC_DLQ):  # nobody dead-letters these: every record must be a row
                assert totals[topic]["rows"] == totals[topic]["records"], (n, topic, totals[topic])
    finally:
        stop(worker)
    con = connect(settings)
    unnamed = con.execute("SELECT count(*) FROM dlq WHERE stage = '' OR error_kind = '' OR error = ''").fetchone()[0]
    accepted = con.execute("SELECT count(*) FROM accepted_examples").fetchone()[0]
    con.close()
    assert unnamed == 0, "every dead letter names its stage and error"
    assert accepted > 0 and sum(valid.values()) >= CORPORA * PER_CORPUS // 3, (accepted, valid)
    print("sent", dict(sent), "valid", dict(valid), "accepted", accepted)
