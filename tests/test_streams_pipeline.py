"""The whole pipeline on a real broker: nothing lost, nothing duplicated, through crashes.

Each test gets its own embedded broker, so topics and consumer groups start empty.
"""

from __future__ import annotations

import threading

import pytest

from streams.simulator import plan_traffic, send
from tests.streams_harness import count, start_worker, stop, wait_for
from toneflow.settings import Settings

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
            wait_for(lambda: count(settings, "SELECT count(*) FROM prompts") >= threshold, 240,
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


def test_agents_run_with_concurrency_one(pipeline_settings):
    """faust#606: concurrency > 1 can commit past an in-flight record."""
    from streams.app import build

    class NoTeacher:
        name, version = "none", "0"

    pipe = build(pipeline_settings, teacher=NoTeacher())
    agents = list(pipe.app.agents.values())
    assert {a.name.rsplit(".", 1)[-1] for a in agents} >= {"labeler", "join", "sink_prompts", "sink_accepted_examples"}
    assert all(a.concurrency == 1 for a in agents)
