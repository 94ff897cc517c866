"""Running the Faust worker: topics first, then the app, with a progress line every few seconds.

The liveness watchdog (``streams/liveness.py``) runs beside the app from its own thread and ends
the process with ``STALL_EXIT_CODE`` when a partition with records makes no committed progress;
the app only tells it its assignment (:func:`watch`).
"""

from __future__ import annotations

import logging
from typing import Any

from foundation.kafka import create_topics
from foundation.settings import Settings
from streams.app import build
from streams.liveness import AssignmentTracker, Watchdog
from streams.pipeline import Pipeline
from streams.topics import APP_ID, watched_groups, worker_topics

log = logging.getLogger("toneflow.worker")
PROGRESS_EVERY_S = 5.0


def prepare_topics(settings: Settings) -> None:
    """Create every topic the worker reads or writes, the join table's changelog included.

    Explicitly, with our partition count: Tansu auto-creates unknown topics with its own count,
    which makes Faust tables fail with PartitionsMismatch.
    """
    create_topics(settings, list(worker_topics()))


def add_progress(pipe: Pipeline) -> None:
    @pipe.app.timer(interval=PROGRESS_EVERY_S, name="progress")
    async def progress() -> None:
        if pipe.stats:
            log.warning("progress %s", " ".join(f"{k}={v}" for k, v in sorted(pipe.stats.items())))


def watch(pipe: Pipeline) -> Watchdog:
    """A watchdog over the worker's groups, fed the assignment from Faust's rebalance signal.

    The Faust app is one consumer group, named after the app id (streams/topics.py).
    """
    assignment = AssignmentTracker()

    async def assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        (partitions,) = args  # Faust sends the whole new assignment, a set of TPs
        assignment.assigned(APP_ID, ((tp.topic, tp.partition) for tp in partitions))

    pipe.app.on_partitions_assigned.connect(assigned)

    return Watchdog(pipe.settings, watched_groups(), assignment)


def run(settings: Settings, *, loglevel: str = "warning", teacher: Any = None) -> None:
    """Run the worker until SIGINT/SIGTERM (or until an agent crashes: then the process exits)."""
    import faust

    from warehouse.layout import warehouse_root
    from warehouse.writer import remove_stale_temp_files

    prepare_topics(settings)
    removed = remove_stale_temp_files(warehouse_root(settings))
    if removed:
        log.warning("removed %d temp files left by a crashed writer", removed)
    pipe = build(settings, teacher=teacher)
    add_progress(pipe)
    watchdog = watch(pipe).start()
    worker = faust.Worker(pipe.app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    # No terminal spinner: to spin on every log message Faust sets the root logger to DEBUG, so
    # every debug call in faust and aiokafka (several per record) built a LogRecord that the
    # WARNING handler then dropped; it also wrote cursor escapes into the worker's log.
    worker.spinner = None
    try:
        worker.execute_from_commandline()
    finally:
        watchdog.stop()
