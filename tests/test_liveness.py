"""The liveness watchdog (streams/liveness.py): its rules, its broker reads, its exit, its health check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from foundation.osutil import atomic_write_json
from foundation.settings import Settings
from streams.liveness import (
    STALL_EXIT_CODE,
    AssignmentTracker,
    Health,
    Offsets,
    ProgressJudge,
    Watchdog,
    check_health,
    status_path,
)
from streams.topics import ConsumerGroup, watched_groups

G = "toneflow-worker"
P0, P1 = (G, "t", 0), (G, "t", 1)


def _run(judge: ProgressJudge, steps, probe=None, assignment=None) -> Health:
    """Feed (seconds, {key: Offsets} | None) steps to the judge; returns the last Health."""
    health = None
    for t, offsets in steps:
        health = judge.observe(t, 1000.0 + t, offsets, assignment, "cut", probe)
    assert health is not None
    return health


def test_moving_offsets_are_progress_and_still_ones_a_stall():
    judge = ProgressJudge(stall_s=10)
    moving = [(t, {P0: Offsets(committed=t, low=0, high=100), P1: Offsets(committed=5, low=0, high=100)})
              for t in range(0, 10, 2)]
    health = _run(judge, moving)
    assert health.state == "ok" and health.stalled == []  # P1 still for 8 s of a 10 s limit
    health = _run(judge, [(10, {P0: Offsets(10, 0, 100), P1: Offsets(5, 0, 100)})])
    assert health.state == "stalled" and [p.name for p in health.stalled] == ["t[1]"]
    assert "t[1] (95 behind)" in health.message and "TONEFLOW_WORKER_STALL_S" in health.message


def test_caught_up_partitions_never_stall():
    calls = []

    def probe(highs):
        calls.extend(highs)
        return dict(highs)  # the watermark is the end: nothing after the committed offset

    judge = ProgressJudge(stall_s=5)
    idle = [(t, {P0: Offsets(committed=100, low=0, high=100), P1: Offsets(committed=None, low=0, high=0)})
            for t in range(0, 60, 2)]
    health = _run(judge, idle, probe)
    assert health.state == "ok" and all(p.lag == 0 and p.stuck_s == 0 for p in health.partitions)
    assert calls == [P0]  # an empty partition needs no probe, an idle one a single probe


def test_broker_outages_do_not_count_as_stuck_time():
    judge = ProgressJudge(stall_s=10)
    still = {P0: Offsets(committed=5, low=0, high=50)}
    health = _run(judge, [(0, still), (4, still), (5, None), (20, None)])
    assert health.state == "unreachable" and health.unreachable_s == 15
    health = _run(judge, [(21, still), (26, still)])  # 4 s before the cut + 5 s after it
    assert health.state == "ok" and health.partitions[0].stuck_s == 9
    assert _run(judge, [(28, still)]).state == "stalled"


def test_only_the_assigned_partitions_are_judged():
    judge = ProgressJudge(stall_s=4)
    steps = [(t, {P0: Offsets(1, 0, 9), P1: Offsets(1, 0, 9)}) for t in range(0, 10, 2)]
    mine = _run(judge, steps, assignment={G: frozenset({("t", 0)})})
    assert [p.name for p in mine.stalled] == ["t[0]"] and [p.name for p in mine.partitions] == ["t[0]"]
    assert mine.assigned_groups == [G]
    other = _run(ProgressJudge(stall_s=4), steps, assignment={"another-group": frozenset()})
    assert [p.name for p in other.stalled] == ["t[0]", "t[1]"]  # G's assignment unknown: all of G judged


def test_at_or_above_tansus_watermark_the_true_end_decides():
    """Tansu's high watermark is the last batch's base + 1: committed 40 >= 31 says nothing about 31..59."""
    calls = []

    def probe(highs):
        calls.append(dict(highs))
        return {key: {P0: 60, P1: 40}[key] for key in highs}

    judge = ProgressJudge(stall_s=10)
    steps = [(t, {P0: Offsets(40, 0, 31), P1: Offsets(40, 0, 31)}) for t in range(0, 14, 2)]
    health = _run(judge, steps, probe)
    assert [p.name for p in health.stalled] == ["t[0]"] and health.stalled[0].lag == 20
    assert [p.lag for p in health.partitions] == [20, 0]
    assert calls == [{P0: 31, P1: 31}]  # one round for both, once per watermark, not once per check


def test_assignment_tracker_keeps_the_last_assignment():
    tracker = AssignmentTracker()
    assert tracker() == {}
    tracker.assigned(G, [("t", 0), ("t", 1)])
    tracker.assigned(G, [("t", 1)])  # a rebalance: the whole new assignment
    assert tracker() == {G: {("t", 1)}}


def test_watched_groups_are_what_the_stages_consume(tmp_path):
    """streams/topics.py lists the worker's groups and input topics by hand; the stages must agree."""
    from streams.app import build

    class NoTeacher:
        name, version = "none", "0"

    worker = build(Settings(data_dir=tmp_path, kafka_bootstrap="127.0.0.1:1"), teacher=NoTeacher())
    stages = {(s.group_id, tuple(s.topics)) for s in worker.stages}
    assert {(g.group_id, g.topics) for g in watched_groups()} == stages
    assert len(stages) == len(worker.stages) == 3


# -- against the real broker ---------------------------------------------------------------------

@pytest.mark.broker
def test_watchdog_reads_committed_offsets_and_true_ends_from_the_broker(broker_settings, unique, tmp_path):
    from confluent_kafka import Consumer, Producer, TopicPartition

    from foundation.kafka import consumer_config, create_topics, producer_config

    topic, group = f"test.liveness.{unique}", f"g-{unique}"
    create_topics(broker_settings, [topic], partitions=2)
    producer = Producer(producer_config(broker_settings, **{"linger.ms": 50}))
    for i in range(20):
        producer.produce(topic, value=b"x", partition=i % 2)  # one batch per partition: watermark 1
    assert producer.flush(10) == 0
    committer = Consumer(consumer_config(broker_settings, group))
    committer.commit(offsets=[TopicPartition(topic, 0, 10), TopicPartition(topic, 1, 4)], asynchronous=False)

    settings = Settings(data_dir=tmp_path, kafka_bootstrap=broker_settings.kafka_bootstrap, worker_stall_s=2)
    stalls: list[Health] = []
    dog = Watchdog(settings, [ConsumerGroup(group, (topic,))], on_stall=stalls.append)
    try:
        deadline = time.monotonic() + 30
        health = dog.check()
        while health.state != "stalled" and time.monotonic() < deadline:
            time.sleep(0.5)
            health = dog.check()
        assert health.state == "stalled", health.message
        assert [(p.name, p.committed, p.lag) for p in health.stalled] == [(f"{topic}[1]", 4, 6)]
        assert json.loads(status_path(settings).read_text())["state"] == "stalled"
        committer.commit(offsets=[TopicPartition(topic, 1, 10)], asynchronous=False)
        health = dog.check()
        assert health.state == "ok" and [p.lag for p in health.partitions] == [0, 0]
    finally:
        dog.stop()
        committer.close()


# -- the health check ----------------------------------------------------------------------------

def _status(settings: Settings, state: str, age_s: float = 0.0, message: str = "m") -> None:
    atomic_write_json(status_path(settings), {"state": state, "message": message, "pid": 42, "interval_s": 2.0,
                                              "checked_at": time.time() - age_s, "unreachable_s": 31.0})


def _check_cli(data_dir) -> subprocess.CompletedProcess:
    env = {**os.environ, "TONEFLOW_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "toneflow", "worker", "--check"], env=env, capture_output=True,
                          text=True, timeout=60)


def test_health_check_cli(tmp_path):
    settings = Settings(data_dir=tmp_path)
    missing = _check_cli(tmp_path)
    assert missing.returncode == 1 and "no worker status" in missing.stderr and "toneflow worker" in missing.stderr
    _status(settings, "stalled", message="no committed progress for 21 s on toneflow.labels[2]")
    stalled = _check_cli(tmp_path)
    assert stalled.returncode == 1 and "stalled" in stalled.stderr and "toneflow.labels[2]" in stalled.stderr
    _status(settings, "ok", message="20 partitions, 3 records behind")
    healthy = _check_cli(tmp_path)
    assert healthy.returncode == 0 and "3 records behind" in healthy.stdout


def test_health_check_fails_on_a_stale_or_unreachable_status(tmp_path):
    settings = Settings(data_dir=tmp_path)
    _status(settings, "ok", age_s=20)
    assert check_health(settings).ok  # a slow check on a loaded machine is not a frozen worker
    _status(settings, "ok", age_s=60)
    stale = check_health(settings)
    assert not stale.ok and "60 s old" in stale.message and "frozen or gone" in stale.message
    _status(settings, "unreachable")
    assert not check_health(settings).ok and "cannot reach the broker" in check_health(settings).message
    _status(settings, "starting")
    assert check_health(settings).ok


# -- the real worker -----------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.broker
def test_a_hung_worker_exits_with_the_stall_code_and_a_restart_drains(fresh_broker_settings, tmp_path, monkeypatch):
    """The sink's event loop hangs for good (failpoint): the watchdog thread still sees it and exits."""
    from streams.simulator import plan_traffic, send
    from tests.streams_harness import count, start_worker, stop, wait_for

    settings = fresh_broker_settings
    plan = plan_traffic(settings, 60, 5)
    log = tmp_path / "worker.log"
    monkeypatch.setenv("TONEFLOW_WORKER_STALL_S", "8")
    worker = start_worker(settings, log, failpoints="sink.after_write_before_ack:hang")
    sender = threading.Thread(target=send, args=(settings, plan), kwargs={"progress": False})
    sender.start()
    try:
        hung = None
        deadline = time.monotonic() + 120
        while worker.poll() is None and time.monotonic() < deadline:
            if hung is None and "failpoint sink.after_write_before_ack: hanging" in log.read_text():
                hung = time.monotonic()
            time.sleep(0.2)
        sender.join()
        assert worker.poll() == STALL_EXIT_CODE, log.read_text()[-3000:]
        assert hung is not None
        delay = time.monotonic() - hung
        print(f"stall exit {delay:.1f} s after the hang (TONEFLOW_WORKER_STALL_S=8)")
        assert delay <= 8 + 10, f"stall reported {delay:.0f} s after the hang (limit 8 s)"
        status = json.loads(status_path(settings).read_text())
        assert status["state"] == "stalled" and "no committed progress" in status["message"]
        # every stage's rebalance callback reached the watchdog
        assert status["assigned_groups"] == sorted(g.group_id for g in watched_groups())
        assert "worker stalled" in log.read_text() and "exiting with code 75" in log.read_text()

        monkeypatch.delenv("TONEFLOW_WORKER_STALL_S")
        worker = start_worker(settings, log)  # what the supervisor does

        def drained() -> bool:
            status = json.loads(status_path(settings).read_text())
            return (status["pid"] == worker.pid and status["state"] == "ok"
                    and all(p["lag"] == 0 for p in status["partitions"]))

        wait_for(drained, 180, "the restarted worker to commit every record")
        assert count(settings, "SELECT count(*) FROM accepted_examples") == len(plan.expected_accepted)
        assert check_health(settings).ok
    finally:
        stop(worker)
