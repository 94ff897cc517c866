"""The whole pipeline on a real broker: nothing lost, nothing duplicated, through crashes.

Each test gets its own embedded broker, so topics and consumer groups start empty.
"""

from __future__ import annotations

import threading

import pytest

from foundation.settings import Settings
from streams.simulator import plan_traffic, send
from tests.streams_harness import count, start_worker, stop, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]


@pytest.fixture
def pipeline_settings(fresh_broker_settings):
    return fresh_broker_settings


def _check_warehouse(settings: Settings, expected: set[str], malformed: int, valid_prompts: int) -> None:
    from warehouse.catalog import connect

    con = connect(settings)
    accepted = [r[0] for r in con.execute("SELECT event_id FROM accepted_examples").fetchall()]
    assert set(accepted) == expected and len(accepted) == len(expected)
    assert con.execute("SELECT count(*) FROM labels").fetchone()[0] == valid_prompts
    dlq = con.execute("SELECT count(*), count(bad_offset), count(DISTINCT error_kind) FROM dlq "
                      "WHERE stage LIKE '%.decode'").fetchone()
    assert dlq[0] == malformed and dlq[1] == malformed  # every one names its offset
    # Replays may leave physical duplicates in files (never in the view); temp files are not data.
    physical, distinct = con.execute(
        "SELECT count(*), count(DISTINCT event_id) FROM read_parquet(?)",
        [str(settings.data_path / "warehouse/accepted_examples/*/[!.]*.parquet")]).fetchone()
    assert distinct == len(expected) and physical >= distinct


def test_sigkill_twice_mid_stream_loses_and_duplicates_nothing(pipeline_settings, tmp_path):
    settings = pipeline_settings
    plan = plan_traffic(settings, 300, seed=7, malformed=50)
    expected = set(plan.expected_accepted)
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log)
    sender = threading.Thread(target=send, args=(settings, plan), kwargs={"rate": 60.0, "progress": False})
    sender.start()
    try:
        for threshold in (60, 250):  # kill once early, once later in the stream
            wait_for(lambda n=threshold: count(settings, "SELECT count(*) FROM prompts") >= n, 240,
                     f"{threshold} prompts in the warehouse")
            worker.kill()
            worker.wait(10)
            worker = start_worker(settings, log)
        sender.join(60)
        wait_for(lambda: count(settings, "SELECT count(*) FROM accepted_examples") >= len(expected) and
                 count(settings, "SELECT count(*) FROM dlq") >= 50, 300, "every accepted example and DLQ record")
    finally:
        stop(worker)
        sender.join(5)
    _check_warehouse(settings, expected, 50, 300)


@pytest.mark.parametrize("failpoint", [
    "labeler.after_teacher_before_produce",   # crash after paying the teacher, before producing labels
    "sink.after_write_before_ack",            # crash after the Parquet write, before the commit
    "labeler.after_teacher_before_produce:raise",  # an exception inside an agent
])
def test_crash_points_replay_without_loss(pipeline_settings, tmp_path, failpoint):
    settings = pipeline_settings
    plan = plan_traffic(settings, 60, seed=3, malformed=5)
    send(settings, plan, progress=False)
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log, failpoints=failpoint)
    try:
        # The worker must die by itself: an agent that crashes takes the worker down (no zombie
        # worker with a dead agent), and nothing it was processing is acked.
        assert worker.wait(240) != 0, log.read_text()[-2000:]
        worker = start_worker(settings, log)
        wait_for(lambda: count(settings, "SELECT count(*) FROM accepted_examples") >= len(plan.expected_accepted)
                 and count(settings, "SELECT count(*) FROM dlq") >= 5, 240, "the replay to finish")
    finally:
        stop(worker)
    _check_warehouse(settings, set(plan.expected_accepted), 5, 60)


def _changelog_records(settings: Settings) -> int:
    from confluent_kafka import Consumer, TopicPartition

    from foundation.kafka import consumer_config
    from streams.pipeline import changelog_topic

    consumer = Consumer(consumer_config(settings, "test-changelog-watermarks"))
    try:
        return sum(high - low for low, high in (
            consumer.get_watermark_offsets(TopicPartition(changelog_topic(), p), timeout=10)
            for p in range(settings.topic_partitions)))
    finally:
        consumer.close()


def test_restart_with_slow_seek_processes_every_record(pipeline_settings, tmp_path):
    """Issue 4: records fetched while a restarted worker recovered its join table were dropped (stall).

    The first worker fills the join table's changelog, so the second one must recover it first;
    its recovery is slowed (``tests/slow_seek_worker.py``) while the labeler keeps producing labels
    for the join. The Faust worker stalled here every time without its recovery fix.
    """
    settings = pipeline_settings
    first, second = plan_traffic(settings, 30, seed=11), plan_traffic(settings, 30, seed=12)
    log = tmp_path / "worker.log"
    send(settings, first, progress=False)
    worker = start_worker(settings, log)
    try:
        wait_for(lambda: count(settings, "SELECT count(*) FROM accepted_examples") >= len(first.expected_accepted),
                 240, "the first batch")
        # SIGKILL, like the crash tests: the dead member is evicted before the restart's first
        # assignment, so no later rebalance re-seeks and heals what the recovery dropped.
        worker.kill()
        worker.wait(10)
    finally:
        stop(worker)
    assert count(settings, "SELECT count(*) FROM prompts") == 30
    assert _changelog_records(settings) > 0  # so the restart must recover the table first
    send(settings, second, progress=False)
    worker = start_worker(settings, log, module="tests.slow_seek_worker")
    try:
        wait_for(lambda: count(settings, "SELECT count(*) FROM labels") >= 60, 60,
                 "every prompt of the second batch labelled after the restart")
        wait_for(lambda: count(settings, "SELECT count(*) FROM accepted_examples")
                 >= len(first.expected_accepted) + len(second.expected_accepted), 60, "every accepted example")
    finally:
        stop(worker)
    _check_warehouse(settings, {*first.expected_accepted, *second.expected_accepted}, 0, 60)


@pytest.fixture
def built_worker(pipeline_settings):
    """The worker's stages, built the way ``toneflow worker`` builds them (no teacher needed)."""
    from streams.app import build

    class NoTeacher:
        name, version = "none", "0"

    worker = build(pipeline_settings, teacher=NoTeacher())
    yield worker
    worker.pipe.outbox.close()


def test_every_stage_commits_in_its_own_named_group(built_worker):
    """Liveness checks read committed offsets per group: the names are part of the contract."""
    from schemas.events import TOPIC_RETRAIN, TOPICS

    assert built_worker.group_ids == ["toneflow-labeler", "toneflow-join", "toneflow-sink"]
    consumed = [t for s in built_worker.stages for t in s.topics]
    assert sorted(consumed) == sorted(t for t in TOPICS if t != TOPIC_RETRAIN)  # each topic by one stage
