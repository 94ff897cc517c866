"""Workers scale out: several `toneflow worker`s in the same consumer groups split a 12-partition
topic set; one joining mid-stream and one SIGKILLed mid-stream leave the warehouse views with
exactly the expected accepted set, without duplicates.

The join's state moves with its partitions (``streams/changelog.py``): a project whose label was
joined by one worker and whose export arrives after a rebalance is accepted by the next owner of
its partition, from the state it recovered.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from foundation import broker
from foundation.settings import Settings
from schemas.events import TOPICS
from streams.simulator import plan_traffic, send
from tests.streams_harness import count, start_worker, stop, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]
PARTITIONS = 12


@pytest.fixture
def twelve_partitions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A broker of this test's own whose topics have 12 partitions; workers inherit the count."""
    monkeypatch.setenv("TONEFLOW_TOPIC_PARTITIONS", str(PARTITIONS))
    own = Settings(data_dir=tmp_path / "broker", topic_partitions=PARTITIONS)
    state = broker.start(own, TOPICS)
    try:
        yield Settings(data_dir=tmp_path / "data", kafka_bootstrap=state.bootstrap, topic_partitions=PARTITIONS)
    finally:
        broker.stop(own)


def _assigned(log: Path, stage: str) -> list[int]:
    """How many partitions ``stage`` was assigned at each rebalance, from a worker's log."""
    return [int(n) for n in re.findall(rf"{stage}: assigned (\d+) partitions", log.read_text(errors="replace"))]


def test_workers_split_partitions_and_survive_a_join_and_a_kill(twelve_partitions, tmp_path):
    settings = twelve_partitions
    plan = plan_traffic(settings, 900, seed=21)
    expected = set(plan.expected_accepted)
    logs = {name: tmp_path / f"worker-{name}.log" for name in ("a", "b", "c")}
    workers = {"a": start_worker(settings, logs["a"]), "b": start_worker(settings, logs["b"])}
    # ~1,500 events at 25/s last ~60 s. The stream starts once both workers hold partitions: a
    # worker loads its teacher before it joins (streams/worker.py), 10-30 s on a busy box, and that
    # start-up must not use up the stream the third worker's join and the kill need to land in.
    sender = threading.Thread(target=send, args=(settings, plan), kwargs={"rate": 25.0, "progress": False})
    try:
        wait_for(lambda: all(_assigned(logs[w], "labeler") for w in ("a", "b")), 120,
                 "workers a and b to join the consumer group")
        sender.start()
        wait_for(lambda: count(settings, "SELECT count(*) FROM prompts") >= 200, 240, "200 prompts in the warehouse")
        # Two workers split the work: each labeler holds part of the 12 prompt partitions.
        wait_for(lambda: all(_assigned(logs[w], "labeler") and 0 < _assigned(logs[w], "labeler")[-1] < PARTITIONS
                             for w in ("a", "b")), 60, "workers a and b to split the partitions")
        workers["c"] = start_worker(settings, logs["c"])  # a third joins mid-stream
        wait_for(lambda: bool(_assigned(logs["c"], "join")) and _assigned(logs["c"], "join")[-1] > 0, 120,
                 "the third worker's join to take partitions")
        wait_for(lambda: count(settings, "SELECT count(*) FROM prompts") >= 400, 240, "400 prompts in the warehouse")
        workers["a"].kill()  # one dies mid-stream, with whatever it had in flight
        workers["a"].wait(10)
        assert sender.is_alive(), "the stream ended before the kill: send more slowly"
        # The survivors take over the dead worker's partitions once its session times out.
        wait_for(lambda: _assigned(logs["b"], "join")[-1] + _assigned(logs["c"], "join")[-1] == 2 * PARTITIONS, 120,
                 "workers b and c to own every join partition (labels and exports)")
        sender.join(120)
        wait_for(lambda: count(settings, "SELECT count(*) FROM accepted_examples") >= len(expected), 300,
                 "every expected accepted example")
    finally:
        for proc in workers.values():
            stop(proc)
        if sender.is_alive():
            sender.join(5)
    from warehouse.catalog import connect

    con = connect(settings)
    accepted = [r[0] for r in con.execute("SELECT event_id FROM accepted_examples").fetchall()]
    assert set(accepted) == expected and len(accepted) == len(expected)
    assert con.execute("SELECT count(*), count(DISTINCT event_id) FROM labels").fetchone() == (900, 900)
