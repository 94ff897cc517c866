"""What the worker consumes and needs on the broker, without importing the engine (Faust).

One owner for the names the rest of the system needs from the worker: ``toneflow broker start``
creates :func:`worker_topics` (so a re-created broker has the join table's changelog before any
worker runs: Tansu would auto-create it with its own partition count), and the liveness watchdog
(``streams/liveness.py``) judges progress on :func:`watched_groups`. Importing this module stays
cheap (``toneflow --help`` is instant): it imports no Kafka client and no Faust.

When the engine changes (its consumer groups, its state topics), this module changes with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.events import TOPIC_ACCEPTED, TOPIC_DLQ, TOPIC_EXPORTS, TOPIC_LABELS, TOPIC_PROMPTS, TOPICS

APP_ID = "toneflow-worker"
JOIN_TABLE = "join"


@dataclass(frozen=True)
class ConsumerGroup:
    """A consumer group of the worker and the input topics it commits offsets on."""

    group_id: str
    topics: tuple[str, ...]


def changelog_topic(table: str = JOIN_TABLE) -> str:
    return f"{APP_ID}-{table}-changelog"


def worker_topics() -> tuple[str, ...]:
    """Every topic the worker reads or writes, the join table's changelog included."""
    return (*TOPICS, changelog_topic())


def watched_groups() -> tuple[ConsumerGroup, ...]:
    """The worker's consumer groups and what each consumes (and commits).

    The Faust app is one group named after the app id; its agents consume prompts (labeler, sink),
    labels and exports (join, sinks), accepted examples and dead letters (sinks). Not
    ``toneflow.retrain``: the worker writes it and the trainer service consumes it in its own group.
    The changelog is read only during table recovery, at offsets Faust keeps itself, so it is not
    judged by committed offsets. ``tests/test_liveness.py`` checks this list against the agents.
    """
    return (ConsumerGroup(APP_ID, (TOPIC_PROMPTS, TOPIC_EXPORTS, TOPIC_LABELS, TOPIC_ACCEPTED, TOPIC_DLQ)),)
