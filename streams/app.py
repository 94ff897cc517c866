"""The worker's parts, built once: the producer, the three batched stages, the retrain trigger.

Stages (``streams/batch_stage.py``), each its own consumer group on the broker:

| stage | group | consumes | lands in the warehouse | produces |
|---|---|---|---|---|
| labeler | ``toneflow-labeler`` | prompts | prompts | labels, DLQ |
| join | ``toneflow-join`` | labels, exports | labels, exports | accepted, DLQ, changelog |
| sink | ``toneflow-sink`` | accepted, DLQ | accepted_examples, dlq | — |

Each stage lands the records it consumed from the events it decoded (decode once per record).
The stages depend on ``streams/pipeline.py`` (what they share), never on this module, so the
wiring runs one way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from foundation.settings import Settings
from streams.batch_stage import Outbox, Stage
from streams.join import JoinStage
from streams.labeler import LabelerStage
from streams.pipeline import Pipeline
from streams.sink import SinkStage


@dataclass
class Worker:
    pipe: Pipeline
    stages: list[Stage]

    @property
    def group_ids(self) -> list[str]:
        return [s.group_id for s in self.stages]

    @property
    def outboxes(self) -> list[Outbox]:
        """Every producer of the worker, each once (the shared one first)."""
        return list(dict.fromkeys([self.pipe.outbox, *(s.outbox for s in self.stages)]))


def build(settings: Settings, *, teacher: Any = None) -> Worker:
    """Every stage. ``teacher`` defaults to the configured one.

    The labeler and the join, which produce for every record, have a producer each; the sink
    stage (dead letters of foreign junk only) and the retrain trigger share ``pipe.outbox``. A
    flush waits for everything its producer holds: with one producer for all, each stage's wait
    for its own batch's acks also waited for whatever the other stages had produced meanwhile.
    """
    pipe = Pipeline(settings=settings, teacher=teacher)
    pipe.outbox = Outbox(settings, pipe)
    stages: list[Stage] = [LabelerStage(pipe, Outbox(settings, pipe)), JoinStage(pipe, Outbox(settings, pipe)),
                           SinkStage(pipe, pipe.outbox)]
    return Worker(pipe, stages)
