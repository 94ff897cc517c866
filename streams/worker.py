"""Running the worker: topics first, then every stage in one event loop, with a progress line.

The stages (``streams/app.py``) run side by side as tasks of one asyncio loop, with the retrain
trigger, the progress line and the garbage collector's clock (``streams/collector.py``).
SIGINT/SIGTERM stop them cleanly: each finishes the batch it holds, commits what is done and leaves
its consumer group (a restarted worker is assigned at once). An exception in any task ends the
whole worker with a non-zero exit code after the other stages stopped the same way, so no stage can
die while the worker looks healthy; what was not committed is replayed by the restart.

A worker that is alive but stuck is caught by the liveness watchdog (``streams/liveness.py``): it
runs beside the loop in its own thread, judges the committed offsets of the stages' groups (told
each stage's assignment through ``Pipeline.on_assigned``) and ends the process with
``STALL_EXIT_CODE`` when a partition with records makes no progress.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from foundation.errors import ToneflowError
from foundation.kafka import create_topics
from foundation.settings import Settings
from streams import collector, trigger
from streams.app import Worker, build
from streams.liveness import AssignmentTracker, Watchdog
from streams.pipeline import Pipeline
from streams.topics import watched_groups, worker_topics

log = logging.getLogger("toneflow.worker")
PROGRESS_EVERY_S = 5.0
STOP_TIMEOUT_S = 30.0


class WorkerCrashed(ToneflowError):
    """A stage of the worker failed; the worker stopped (its supervisor restarts it)."""


def prepare_topics(settings: Settings) -> None:
    """Create every topic the worker reads or writes, the join's changelog included.

    Explicitly, with our partition count: Tansu auto-creates unknown topics with its own count, and
    the changelog must have exactly the input topics' partitions (``streams/changelog.py``).
    """
    create_topics(settings, list(worker_topics()))


def progress_line(pipe: Pipeline) -> str:
    # How many of its own records a stage took back without decoding (streams.codec.Produced).
    stats = {**pipe.stats, "own_records_reused": pipe.produced.hits, "own_records_decoded": pipe.produced.misses}
    return "progress " + " ".join(f"{k}={v}" for k, v in sorted(stats.items()))


async def _progress(worker: Worker) -> None:
    pipe = worker.pipe
    while True:
        await asyncio.sleep(PROGRESS_EVERY_S)
        for outbox in worker.outboxes:
            outbox.poll()
        if pipe.stats:  # the line shows the counters once a stage counted something
            log.warning("%s", progress_line(pipe))


async def serve(worker: Worker) -> None:
    """Run every stage, the trigger and the progress line until a signal or a failure."""
    loop = asyncio.get_running_loop()
    stages = {asyncio.create_task(s.run(), name=f"stage-{s.name}"): s for s in worker.stages}
    helpers = [asyncio.create_task(_progress(worker), name="progress"),
               asyncio.create_task(collector.run(), name="garbage-collector"),
               asyncio.create_task(trigger.run(worker.pipe), name="retrain-trigger")]
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.warning("worker up: stages %s (consumer groups %s)", ", ".join(s.name for s in worker.stages),
                ", ".join(worker.group_ids))
    stopper = asyncio.create_task(stop.wait())
    failure: BaseException | None = None
    try:
        done, _ = await asyncio.wait([*stages, *helpers, stopper], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stopper and not task.cancelled() and task.exception() is not None:
                failure = task.exception()
                log.error("%s failed: %r; stopping the worker", task.get_name(), failure)
                break
    finally:
        for stage in worker.stages:
            stage.stopping = True
        for task in helpers:
            task.cancel()
        stopper.cancel()
        running = [t for t in stages if not t.done()]
        if running:
            _, late = await asyncio.wait(running, timeout=STOP_TIMEOUT_S)
            for task in late:
                task.cancel()
        for outbox in worker.outboxes:
            outbox.close()
        log.warning("%s", progress_line(worker.pipe))
    if failure is not None:
        msg = f"the worker stopped because {failure!r}; restart it (it resumes from the committed offsets)"
        raise WorkerCrashed(msg) from failure


def run(settings: Settings, *, loglevel: str = "warning", teacher: Any = None) -> None:
    """Run the worker until SIGINT/SIGTERM (or until a stage fails: then it raises WorkerCrashed)."""
    from warehouse.layout import warehouse_root
    from warehouse.writer import remove_stale_temp_files

    logging.basicConfig(level=loglevel.upper(), format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    prepare_topics(settings)
    removed = remove_stale_temp_files(warehouse_root(settings))
    if removed:
        log.warning("removed %d temp files left by a crashed writer", removed)
    worker = build(settings, teacher=teacher)
    # Before the stages join their groups: the offline teacher's encoder takes seconds to load (over
    # 20 s on a busy 2-core box), and prompts held that long before their first commit are, to the
    # liveness watchdog, partitions with records and no progress (tests/test_property_worker.py
    # exited 75 under load). Loaded here, it is also frozen out of collections below.
    log.warning("loading the teacher (%s)", worker.pipe.teacher.name)
    worker.pipe.teacher.warm()
    # What start-up loaded (teacher, encoder) is frozen out of collections, and from here on the
    # collector runs on a clock (streams/collector.py): the join's state is not traversed again and again.
    collector.install()
    assignment = AssignmentTracker()
    worker.pipe.on_assigned = assignment.assigned
    watchdog = Watchdog(settings, watched_groups(), assignment).start()
    try:
        asyncio.run(serve(worker))
    finally:
        watchdog.stop()
