"""The Faust app and what every agent shares (``Pipeline``); ``streams/app.py`` wires the agents in.

Reliability decisions (docs/reliability.md §2), each closing a documented way Faust loses data:

1. Every topic is consumed as raw bytes and decoded by ``streams.codec``: Faust would ack and skip
   an undecodable record; ours go to the DLQ with their offset.
2. Agents never ack implicitly. They iterate with ``noack`` streams and ack a record only after its
   outputs are durable (produced and acknowledged by the broker, or written to Parquet). An
   exception inside an agent therefore cannot ack the record that caused it.
3. Data errors never raise (they become DLQ records). Infrastructure errors (broker, disk, teacher
   down) are retried in place; what still raises crashes the *whole worker* (CrashingSupervisor),
   so an agent can never die while the worker looks healthy — the process supervisor restarts it
   and it resumes from the last committed offsets.
4. Every agent runs with concurrency 1 (faust#606: concurrency > 1 can commit past an in-flight
   record); throughput comes from batching and bounded concurrency *inside* the agent.
5. Faust's end-of-recovery drops records fetched while it seeks (``streams.faust_fixes``): patched
   before the app is built, or a restarted worker stalls with records it will never process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import faust
from mode import CrashingSupervisor

from foundation.kafka import bootstrap_servers
from foundation.settings import Settings
from streams import faust_fixes
from streams.topics import APP_ID, JOIN_TABLE, changelog_topic

__all__ = ["APP_ID", "JOIN_TABLE", "Pipeline", "changelog_topic", "make_faust_app", "raw_topic"]


def _credentials(settings: Settings) -> Any:
    if not settings.kafka_sasl_mechanism:
        return None
    password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None
    return faust.SASLCredentials(username=settings.kafka_sasl_username, password=password,
                                 mechanism=settings.kafka_sasl_mechanism)


def make_faust_app(settings: Settings) -> faust.App:
    faust_fixes.apply()
    settings.data_path.mkdir(parents=True, exist_ok=True)  # Faust creates its datadir, not the parents
    return faust.App(
        APP_ID,
        broker=[f"kafka://{hp.strip()}" for hp in bootstrap_servers(settings).split(",")],
        broker_credentials=_credentials(settings),
        # Tansu stalls the first group join for ~20 s with the default 60 s session timeout.
        broker_session_timeout=6.0,
        broker_heartbeat_interval=2.0,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        processing_guarantee="at_least_once",  # exactly_once needs transactions (Tansu has none)
        agent_supervisor=CrashingSupervisor,
        store="memory://",                      # table state is rebuilt from its changelog topic
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        topic_disable_leader=True,
        topic_allow_declare=False,               # topics are created explicitly, with our counts
        producer_acks=-1,
        # aiokafka sends one batch per partition per request and waits for its ack; with Faust's
        # 16 KB default a batch holds ~15 records, so a broker round trip per 15 records capped the
        # join and the labeler. Larger batches (filled while the previous request is in flight)
        # carry a whole agent batch in a few requests.
        producer_max_batch_size=1024 * 1024,
        producer_max_request_size=4 * 1024 * 1024,
        web_enabled=False,
        datadir=str(settings.data_path / "faust"),  # not Faust's default: ./<app id>-data in the cwd
        stream_buffer_maxsize=4096,              # backpressure bound per partition
    )


def raw_topic(app: faust.App, name: str) -> faust.TopicT:
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")


@dataclass
class Pipeline:
    """Everything the agents share: settings, the app, its topics, the teacher."""

    settings: Settings
    app: faust.App
    teacher: Any = None
    topics: dict[str, faust.TopicT] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)

    def count(self, name: str, n: int = 1) -> None:
        self.stats[name] = self.stats.get(name, 0) + n

    def add_time(self, stage: str, started: float) -> None:
        """Add the time since ``started`` (a ``time.perf_counter()``) to ``<stage>_us``.

        Counted per batch, not per record, so it costs nothing measurable; the progress line and
        ``benchmarks/bench_pipeline.py`` read it to say where a worker's time goes.
        """
        self.count(f"{stage}_us", round((time.perf_counter() - started) * 1e6))
