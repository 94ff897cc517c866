"""The accounting invariant: every record on a sunk topic is in its table or in the DLQ.

For each topic and partition, the offsets the broker still holds (low to high watermark) are
compared with the offsets the warehouse has: ``src_offset`` of the topic's table, and
``bad_offset`` of DLQ rows about that topic. Physical rows are counted, not the de-duplicated views:
a conflicting duplicate is accounted for (it is a row, listed by the ``conflicting_duplicates``
view), and a replayed batch counts its offsets once.

    records = rows + dlq_only + missing

``missing`` offsets are listed as ranges (the gaps); rows above the high watermark (``ahead``)
mean the topic was recreated under the warehouse. Either makes the audit fail. Offsets below the
low watermark are gone from the broker (retention) and not checked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from foundation.errors import BrokerError
from foundation.settings import Settings
from schemas.events import TOPIC_ACCEPTED, TOPIC_DLQ, TOPIC_EXPORTS, TOPIC_LABELS, TOPIC_PROMPTS

# topic -> the table its sink writes (streams/sink.py SINKS says the same, one layer up)
SUNK_TOPICS: dict[str, str] = {
    TOPIC_PROMPTS: "prompts", TOPIC_EXPORTS: "exports", TOPIC_LABELS: "labels",
    TOPIC_ACCEPTED: "accepted_examples", TOPIC_DLQ: "dlq",
}
MAX_GAPS_LISTED = 20


@dataclass
class PartitionAudit:
    topic: str
    partition: int
    low: int
    high: int
    rows: int = 0       # offsets with a row in the topic's table
    dlq_only: int = 0   # offsets without a row but dead-lettered (any stage)
    dlq_and_row: int = 0  # offsets with both (e.g. stored by the sink, refused by the labeler)
    missing: int = 0
    ahead: int = 0      # rows with offsets at or above the high watermark
    gaps: list[tuple[int, int]] = field(default_factory=list)  # missing offsets, first..last inclusive

    @property
    def records(self) -> int:
        return self.high - self.low

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.ahead == 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "records": self.records, "ok": self.ok}


def watermarks(settings: Settings, topics: list[str], timeout_s: float = 10.0) -> dict[tuple[str, int], tuple[int, int]]:
    """(topic, partition) -> (low, high) watermark, from the broker."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    from foundation.kafka import bootstrap_servers, consumer_config

    # A consumer that never subscribes or commits: it asks for offsets and reads the last records.
    consumer = Consumer(consumer_config(settings, "toneflow-audit", **{"enable.partition.eof": True}))
    out: dict[tuple[str, int], tuple[int, int]] = {}
    try:
        meta = consumer.list_topics(timeout=timeout_s).topics
        for topic in topics:
            if topic not in meta or meta[topic].error is not None:
                msg = f"topic {topic} is not on the broker at {bootstrap_servers(settings)}; audit the broker the worker used"
                raise BrokerError(msg)
            for partition in sorted(meta[topic].partitions):
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)
                out[(topic, partition)] = (low, high)
        out = _read_to_end(consumer, out, timeout_s)
    except KafkaException as err:
        msg = f"cannot read offsets from {bootstrap_servers(settings)}: {err}; is the broker up?"
        raise BrokerError(msg) from None
    finally:
        consumer.close()
    return out


def _read_to_end(consumer: Any, marks: dict[tuple[str, int], tuple[int, int]],
                 timeout_s: float) -> dict[tuple[str, int], tuple[int, int]]:
    """The high watermarks checked by reading the last records (``foundation.kafka.read_true_ends``)."""
    from foundation.kafka import read_true_ends

    ends, late = read_true_ends(consumer, {key: high for key, (low, high) in marks.items() if high > low}, timeout_s)
    if late:
        msg = f"could not read to the end of {sorted(late)} within {timeout_s:.0f} s; is the broker overloaded?"
        raise BrokerError(msg)
    return {key: (low, ends.get(key, high)) for key, (low, high) in marks.items()}


_PARTITION_SQL = """
WITH t AS (SELECT DISTINCT src_offset AS o FROM {table} WHERE src_topic = $topic AND src_partition = $partition),
     d AS (SELECT DISTINCT bad_offset AS o FROM {dlq} WHERE bad_topic = $topic AND bad_partition = $partition
                                                              AND bad_offset IS NOT NULL),
     seen AS (SELECT o FROM t UNION SELECT o FROM d),
     held AS (SELECT o FROM seen WHERE o >= $low AND o < $high
              UNION ALL SELECT $low - 1 UNION ALL SELECT $high),  -- sentinels: gaps at both ends show
     steps AS (SELECT o, lead(o) OVER (ORDER BY o) AS nxt FROM held)
SELECT (SELECT count(*) FROM t WHERE o >= $low AND o < $high),
       (SELECT count(*) FROM d WHERE o >= $low AND o < $high AND o NOT IN (SELECT o FROM t)),
       (SELECT count(*) FROM d WHERE o >= $low AND o < $high AND o IN (SELECT o FROM t)),
       (SELECT count(*) FROM t WHERE o >= $high),
       (SELECT coalesce(sum(nxt - o - 1), 0) FROM steps WHERE nxt > o + 1),
       (SELECT list([o + 1, nxt - 1] ORDER BY o) FROM (SELECT * FROM steps WHERE nxt > o + 1 ORDER BY o LIMIT {gaps}))
"""


def audit(settings: Settings, topics: dict[str, str] | None = None) -> list[PartitionAudit]:
    """One PartitionAudit per partition of each topic in ``topics`` (topic -> table; default SUNK_TOPICS)."""
    from warehouse.catalog import connect, source_sql

    topics = SUNK_TOPICS if topics is None else topics
    marks = watermarks(settings, list(topics))
    con = connect(settings)
    dlq = source_sql(settings, "dlq")
    results = []
    try:
        for (topic, partition), (low, high) in marks.items():
            sql = _PARTITION_SQL.format(table=source_sql(settings, topics[topic]), dlq=dlq, gaps=MAX_GAPS_LISTED)
            row = con.execute(sql, {"topic": topic, "partition": partition, "low": low, "high": high}).fetchall()[0]
            rows, dlq_only, both, ahead, missing, gaps = row
            results.append(PartitionAudit(topic, partition, low, high, rows=rows, dlq_only=dlq_only, dlq_and_row=both,
                                          missing=int(missing), ahead=ahead,
                                          gaps=[(int(a), int(b)) for a, b in (gaps or [])]))
    finally:
        con.close()
    return results
