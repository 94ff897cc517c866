"""The worker's app with every agent registered: labeler, join, sinks, retrain trigger.

The agents depend on ``streams/pipeline.py`` (the app and what they share), never on this module, so
the wiring runs one way.
"""

from __future__ import annotations

from typing import Any

from foundation.settings import Settings
from schemas.events import TOPIC_ACCEPTED, TOPIC_DLQ, TOPIC_EXPORTS, TOPIC_LABELS, TOPIC_PROMPTS, TOPIC_RETRAIN
from streams import join, labeler, sink, trigger
from streams.pipeline import Pipeline, make_faust_app, raw_topic


def build(settings: Settings, *, teacher: Any = None) -> Pipeline:
    """The app with all agents registered. ``teacher`` defaults to the configured one."""
    app = make_faust_app(settings)
    pipe = Pipeline(settings=settings, app=app, teacher=teacher)
    for name in (TOPIC_PROMPTS, TOPIC_EXPORTS, TOPIC_LABELS, TOPIC_ACCEPTED, TOPIC_RETRAIN, TOPIC_DLQ):
        pipe.topics[name] = raw_topic(app, name)
    labeler.register(pipe)
    join.register(pipe)
    sink.register(pipe)
    trigger.register(pipe)
    return pipe
