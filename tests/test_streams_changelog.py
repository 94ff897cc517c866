"""The join's changelog on a real (embedded) broker: what is written is what a new owner recovers.

Tansu reports a partition's high watermark as the last batch's *base* offset + 1, so a recovery
that stopped at the high watermark would miss the rest of the last batch; these writes put many
entries in each batch (one flush per batch, as the join does) to make that visible.
"""

from __future__ import annotations

import asyncio

import pytest

from foundation.kafka import create_topics
from schemas.events import SourceRef
from streams import changelog
from streams.batch_stage import Outbox
from streams.join_state import JoinState
from streams.pipeline import Pipeline, changelog_topic
from tests.test_streams_join_state import _export, _label

pytestmark = [pytest.mark.broker]


def _state(partition: int, project: str, n: int) -> JoinState:
    state = JoinState.empty(partition, now=float(n))
    state.add_label(_label(project, f"e-{project}-{n}"), SourceRef(topic="toneflow.labels", partition=partition, offset=n))
    return state


def test_recovery_reads_every_partition_to_its_true_end(fresh_broker_settings):
    settings = fresh_broker_settings
    create_topics(settings, [changelog_topic()])
    pipe = Pipeline(settings=settings)
    outbox = Outbox(settings, pipe)
    expected: dict[int, dict[str, JoinState]] = {p: {} for p in range(settings.topic_partitions)}

    async def batches() -> None:
        for batch in range(3):  # three flushes: three batches per partition on the log
            writes = []
            for p in range(settings.topic_partitions):
                for k in range(40):
                    project = f"p{p}-k{k}"
                    state = _state(p, project, batch)
                    expected[p][project] = state
                    writes.append((p, project, state.to_bytes()))
            changelog.write(outbox, writes)
            await outbox.flush()
        # The last batch also expires a project (a tombstone) and changes one again.
        changelog.write(outbox, [(1, "p1-k0", None), (1, "p1-k1", changed.to_bytes())])
        await outbox.flush()

    changed = _state(1, "p1-k1", 99)

    try:
        asyncio.run(batches())
    finally:
        outbox.close()
    del expected[1]["p1-k0"]
    expected[1]["p1-k1"] = changed
    recovered = changelog.recover(settings, [1, 2], "test-changelog")
    assert recovered == {**expected[1], **expected[2]}  # only the asked partitions, each to its end
    assert changelog.recover(settings, [], "test-changelog") == {}
    state = recovered["p2-k5"]
    state.add_export(_export("p2-k5", "x"), None)  # a recovered state is a live JoinState
    assert len(state.exports) == 1
