"""What the worker consumes and needs on the broker, without importing the engine.

One owner for the names the rest of the system needs from the worker: ``toneflow broker start``
creates :func:`worker_topics` (so a re-created broker has the join table's changelog before any
worker runs: Tansu would auto-create it with its own partition count), and the liveness watchdog
(``streams/liveness.py``) judges progress on :func:`watched_groups`. Importing this module stays
cheap (``toneflow --help`` is instant): it imports no Kafka client.

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
    # The name the Faust worker of round one used, so a changelog it wrote is still recovered.
    return f"{APP_ID}-{table}-changelog"


def worker_topics() -> tuple[str, ...]:
    """Every topic the worker reads or writes, the join table's changelog included."""
    return (*TOPICS, changelog_topic())


def watched_groups() -> tuple[ConsumerGroup, ...]:
    """The worker's consumer groups (one per stage, ``streams/app.py``) and what each commits on.

    Not ``toneflow.retrain``: the worker writes it and the trainer service consumes it in its own
    group. Not the changelog: the join reads it only to recover, in a group that never commits.
    ``tests/test_liveness.py`` checks this list against the stages the worker builds.
    """
    return (ConsumerGroup("toneflow-labeler", (TOPIC_PROMPTS,)),
            ConsumerGroup("toneflow-join", (TOPIC_LABELS, TOPIC_EXPORTS)),
            ConsumerGroup("toneflow-sink", (TOPIC_ACCEPTED, TOPIC_DLQ)))
