"""Kafka client configuration shared by every producer, consumer and admin client.

The bootstrap address is ``TONEFLOW_KAFKA_BOOTSTRAP`` when set (a real Kafka, with its SASL/SSL
settings passed through), otherwise the embedded broker recorded by ``toneflow broker start``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from foundation.broker_state import read_state
from foundation.errors import BrokerError
from foundation.settings import Settings

# Safety defaults, merged under user overrides. Each has a reason.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",                 # an acked write survives as long as one in-sync replica does
    "enable.idempotence": True,    # the broker drops producer retries of the same record
    "linger.ms": 5,                # small batches without adding visible latency
    # No compression: these JSON records are small, and a worker of an older release (Faust on
    # aiokafka) could only decompress codecs whose Python libraries are installed (lz4 is not).
    "compression.type": "none",
    # Java-compatible key hashing, as the Java clients use: prompts, exports and labels of one
    # project_id must land in the same partition number for the join to be co-partitioned.
    "partitioner": "murmur2_random",
}
CONSUMER_DEFAULTS: dict[str, Any] = {
    "enable.auto.commit": False,   # commit only after the sink is durable (at-least-once)
    "auto.offset.reset": "earliest",
    # Tansu stalls the first group join for ~20 s with the 45 s default; 6 s joins at once.
    "session.timeout.ms": 6000,
}


def bootstrap_servers(settings: Settings) -> str:
    """The bootstrap servers to use, or a BrokerError saying how to get a broker."""
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    state = read_state(settings)
    if state is None or not state.alive():
        msg = (
            "no Kafka broker: run `toneflow broker start` for the embedded one, "
            "or set TONEFLOW_KAFKA_BOOTSTRAP to a real cluster"
        )
        raise BrokerError(msg)
    return state.bootstrap


def security_config(settings: Settings) -> dict[str, Any]:
    """librdkafka security properties from settings (empty for the embedded broker)."""
    conf: dict[str, Any] = {}
    if settings.kafka_security_protocol:
        conf["security.protocol"] = settings.kafka_security_protocol
    if settings.kafka_sasl_mechanism:
        conf["sasl.mechanism"] = settings.kafka_sasl_mechanism
    if settings.kafka_sasl_username:
        conf["sasl.username"] = settings.kafka_sasl_username
    if settings.kafka_sasl_password is not None:
        conf["sasl.password"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_ssl_ca_location:
        conf["ssl.ca.location"] = settings.kafka_ssl_ca_location
    return conf


def client_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Base config for any confluent-kafka client: bootstrap + security + overrides."""
    return {"bootstrap.servers": bootstrap_servers(settings), **security_config(settings), **overrides}


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    return client_config(settings, **{**PRODUCER_DEFAULTS, **overrides})


def consumer_config(settings: Settings, group_id: str, **overrides: Any) -> dict[str, Any]:
    return client_config(settings, **{**CONSUMER_DEFAULTS, "group.id": group_id, **overrides})


def create_topics(settings: Settings, topics: tuple[str, ...] | list[str], *, partitions: int | None = None,
                  timeout_s: float = 20.0) -> list[str]:
    """Create any of ``topics`` that do not exist yet; returns the ones created.

    Every topic is created explicitly: Tansu auto-creates unknown topics with its own partition
    count, which would split a project's records and the join's changelog across partition numbers.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(client_config(settings))
    try:
        existing = set(admin.list_topics(timeout=timeout_s).topics)
    except KafkaException as err:
        msg = f"cannot list topics on {bootstrap_servers(settings)}: {err}"
        raise BrokerError(msg) from None
    wanted = [t for t in topics if t not in existing]
    if not wanted:
        return []
    n = partitions or settings.topic_partitions
    futures = admin.create_topics(
        [NewTopic(t, num_partitions=n, replication_factor=settings.topic_replication) for t in wanted],
        operation_timeout=timeout_s,
    )
    created = []
    for topic, future in futures.items():
        try:
            future.result(timeout=timeout_s)
            created.append(topic)
        except KafkaException as err:
            if "TOPIC_ALREADY_EXISTS" in str(err):
                continue
            msg = f"cannot create topic {topic}: {err}"
            raise BrokerError(msg) from None
    return created


def read_true_ends(consumer: Any, highs: Mapping[tuple[str, int], int], timeout_s: float
                   ) -> tuple[dict[tuple[str, int], int], set[tuple[str, int]]]:
    """(each partition's true end, the partitions that did not reach theirs within ``timeout_s``).

    The embedded broker (Tansu) answers a partition's high watermark as the *base* offset of its
    last record batch + 1, short of the end when a producer sent several records in one batch.
    Reading from there to the partition's end finds the true end (on Kafka it reads just the last
    record). ``consumer`` must have ``enable.partition.eof`` on; it is unassigned afterwards. A
    consumer error other than the end of a partition raises ``confluent_kafka.KafkaException``.
    """
    import time

    from confluent_kafka import KafkaError, KafkaException, TopicPartition

    ends = dict(highs)
    todo = {tp for tp, high in highs.items() if high > 0}
    if not todo:
        return ends, todo
    consumer.assign([TopicPartition(t, p, highs[(t, p)] - 1) for t, p in todo])
    deadline = time.monotonic() + timeout_s
    try:
        while todo and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            tp = (msg.topic(), msg.partition())
            if msg.error() is not None:
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(msg.error())
                todo.discard(tp)
            elif tp in ends:
                ends[tp] = max(ends[tp], msg.offset() + 1)
    finally:
        consumer.unassign()
    return ends, todo
