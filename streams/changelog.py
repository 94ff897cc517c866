"""The join table's changelog: written explicitly, one entry per changed project, and read back.

The changelog topic (``streams.pipeline.changelog_topic``, the one the Faust worker wrote, so its
entries are still recovered) has the partition count of the input topics. An entry's key is the
project_id as a JSON string (as Faust wrote it), its value ``JoinState.to_bytes()`` or nothing (a
tombstone: the project expired). Each entry goes to the partition of the records that changed the
project (``JoinState.partition``, the input partition), so whichever worker is assigned input
partition p recovers exactly the projects of p from changelog partition p.

Recovery reads each assigned partition from its beginning up to its end. The end is found from
the high watermark, but not trusted as the last offset: the embedded broker (Tansu) reports the
last batch's *base* offset + 1, so a partition is read until a record at or past ``high - 1`` was
seen (that record starts the last batch), and then drained until nothing more arrives, which
takes the rest of the batch librdkafka fetched with it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from json.encoder import encode_basestring_ascii

from foundation.errors import BrokerError
from foundation.kafka import consumer_config
from foundation.settings import Settings
from streams.batch_stage import Outbox
from streams.join_state import JoinState
from streams.pipeline import changelog_topic

log = logging.getLogger(__name__)

# (partition, project key, JoinState.to_bytes() or None to delete): one changelog entry.
ChangelogWrite = tuple[int, str, bytes | None]
RECOVERY_TIMEOUT_S = 120.0
DRAIN_IDLE_S = 0.3


def key_bytes(key: str) -> bytes:
    # ``json.dumps(key).encode()`` (what recovery's ``json.loads`` reads): for a str that is the C
    # ASCII escaper itself, called directly; once per project changed in a batch.
    return encode_basestring_ascii(key).encode()


def write(outbox: Outbox, writes: Iterable[ChangelogWrite]) -> int:
    """Produce the entries (``outbox.flush`` waits for their acks with the batch's outputs)."""
    n = 0
    for partition, key, value in writes:
        outbox.produce(changelog_topic(), key_bytes(key), value, partition=partition)
        n += 1
    return n


def recover(settings: Settings, partitions: Iterable[int], group_id: str) -> dict[str, JoinState]:
    """The latest state of every live project in these changelog partitions (blocking)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    wanted = sorted(set(partitions))
    if not wanted:
        return {}
    topic = changelog_topic()
    consumer = Consumer(consumer_config(settings, f"{group_id}-recovery", **{"enable.partition.eof": False}))
    states: dict[str, bytes | None] = {}
    try:
        ends = {}
        for p in wanted:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high - 1  # the base offset of the last batch (see the module docstring)
        if not ends:
            return {}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        deadline = time.monotonic() + RECOVERY_TIMEOUT_S
        waiting = set(ends)
        idle_since = None
        while True:
            msgs = consumer.consume(10_000, 0.1)
            for m in msgs:
                if m.error() is not None:
                    continue
                raw_key, partition, offset = m.key(), m.partition() or 0, m.offset() or 0
                try:
                    key = json.loads(raw_key) if raw_key is not None else None
                except ValueError:
                    key = None  # not written by a join: nothing to recover
                if isinstance(key, str):
                    states[key] = m.value()
                if offset >= ends.get(partition, 0):
                    waiting.discard(partition)
            if waiting:
                if time.monotonic() > deadline:
                    msg = (f"could not read changelog partitions {sorted(waiting)} of {topic} to their end within "
                           f"{RECOVERY_TIMEOUT_S:.0f} s; is the broker up?")
                    raise BrokerError(msg)
                continue
            if msgs:
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= DRAIN_IDLE_S:
                break
    finally:
        consumer.close()
    out = {k: JoinState.from_bytes(v) for k, v in states.items() if v is not None}
    log.info("join: recovered %d projects from changelog partitions %s", len(out), wanted)
    return out
