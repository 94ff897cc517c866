"""The batched stage engine: one confluent-kafka consumer per stage, batches in, outputs out, commit.

Every hot-path stage of the worker (labeler, join, sink: ``streams/app.py``) runs on this engine,
in the worker's event loop (``streams/worker.py``). A stage is a consumer in its own consumer group
(``group_id``: ``toneflow-<stage>``, committed on the broker, so a liveness check can watch the
committed offsets without knowing this engine) that loops:

  1. ``consume(n, timeout)``: up to ``batch`` records, or what arrived within ``within_s``;
  2. the stage's ``begin``: decode each record once, apply it (pure per-record logic in the stage's
     module) and hand its outputs to the ``Outbox``, batch after batch in log order;
  3. what ``begin`` returned finishes the batch: ``Outbox.flush`` waits until the broker
     acknowledged *every* output produced so far (a delivery failure raises: nothing is committed,
     the worker crashes and replays from the last commit) while the batch's own rows land in the
     warehouse (in a thread, batch after batch); then its records are marked done;
  4. before the next ``consume``, commit exactly the offsets marked done (``Offsets``), synchronously.
Up to ``overlap`` batches are between 2 and 3 at once: the next batch is consumed and begun while
the last one waits for its acks and its files, so a stage's CPU work overlaps its waits.

Consumer calls (consume, commit, close) all run on the stage's own thread, one at a time, so the
event loop never blocks on the broker and the consumer is never used from two threads at once;
the rebalance callbacks run on that thread too, inside ``consume``.

Offsets. A stage marks records done when their outputs are durable. The sink and the join mark a
whole batch when it finishes; the labeler marks prompts as their teacher calls finish, out of log
order. ``Offsets`` commits a partition only up to its first record not done, so a
committed offset never passes a record whose outputs are not acknowledged: a crash anywhere
replays every such record (at-least-once; consumers de-duplicate by event_id).

Rebalances (eager: a revoke of everything, then the new assignment). On revoke the stage's done
offsets are committed and the revoked partitions forgotten: work still in flight for them (a
teacher call) completes, but its marks are ignored, and the partition's new owner replays it. On
assign the stage's ``on_assign`` runs before any record of the new partitions is handled (the
join recovers their state from its changelog there). ``range`` assignment keeps the same
partition number of co-partitioned topics (labels, exports) on the same member.

Back-pressure: a stage whose ``ready()`` is false (the labeler's teacher backlog is full) pauses
its partitions and keeps calling ``consume``, so it stays in the group without fetching.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from foundation.errors import ToneflowError
from foundation.kafka import consumer_config, producer_config
from foundation.settings import Settings
from schemas.events import TOPIC_DLQ, to_json_bytes
from streams.codec import Raw
from streams.outputs import Output
from streams.pipeline import Pipeline

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]


class DeliveryFailed(ToneflowError):
    """The broker did not acknowledge a stage's outputs: the batch is not committed."""


class Offsets:
    """Per partition, the records handed to a stage in log order and which of them are done.

    ``committable`` gives, per partition, the offset to commit: the first record not done, or one
    past the last record seen when all are done. Thread-safe: marks come from the event loop,
    commits on revoke from the consumer's thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[TopicPartition, deque[int]] = {}
        self._done: dict[TopicPartition, set[int]] = {}
        self._next: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}

    def track(self, raws: Iterable[Raw]) -> None:
        with self._lock:
            for raw in raws:
                tp = (raw.topic, raw.partition)
                self._pending.setdefault(tp, deque()).append(raw.offset)
                self._done.setdefault(tp, set())

    def done(self, raws: Iterable[Raw]) -> None:
        with self._lock:
            for raw in raws:
                done = self._done.get((raw.topic, raw.partition))
                if done is not None:  # None: the partition was revoked meanwhile; its new owner replays
                    done.add(raw.offset)

    def committable(self) -> dict[TopicPartition, int]:
        """Offsets to commit that move a partition past what the broker last accepted.

        Offered again until ``committed`` confirms them: a commit that failed (for one partition
        or all) is retried by the next one even if no new record arrives, so an idle partition
        does not sit behind its done records (which the liveness watchdog would take for a stall).
        """
        out = {}
        with self._lock:
            for tp, pending in self._pending.items():
                done = self._done[tp]
                while pending and pending[0] in done:
                    offset = pending.popleft()
                    done.discard(offset)
                    self._next[tp] = offset + 1
                position = self._next.get(tp)
                if position is not None and position > self._committed.get(tp, -1):
                    out[tp] = position
        return out

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        """The broker accepted these offsets (from ``committable``); partitions forgotten since stay forgotten."""
        with self._lock:
            for tp, offset in offsets.items():
                if tp in self._pending and offset > self._committed.get(tp, -1):
                    self._committed[tp] = offset

    def in_flight(self) -> int:
        with self._lock:
            return sum(len(p) for p in self._pending.values())

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        with self._lock:
            for tp in partitions:
                self._pending.pop(tp, None)
                self._done.pop(tp, None)
                self._next.pop(tp, None)
                self._committed.pop(tp, None)


class Outbox:
    """The worker's one confluent-kafka producer: produce now, ``flush`` to wait for every ack.

    A delivery report with an error is kept and raised by the next ``flush`` (``DeliveryFailed``);
    so is a flush that times out with records still queued. librdkafka retries transient errors
    itself (idempotent producer, ``acks=all``); what reaches us has failed for good.
    """

    def __init__(self, settings: Settings, pipe: Pipeline) -> None:
        from confluent_kafka import Producer

        self.pipe = pipe
        # Large local batches: a stage produces a whole batch's outputs, then waits once. Delivery
        # reports for failures only: ``flush`` waits for every record either way, and a report
        # per acknowledged record was a call back into Python for each of ~2 outputs per event.
        # The delivery callback is the producer's own (``on_delivery`` in its config), not one
        # passed with each record: a callback per record was a Python object kept per message.
        self._errors: list[str] = []
        self._producer = Producer(producer_config(settings, **{"linger.ms": 5, "batch.size": 1_000_000,
                                                               "queue.buffering.max.messages": 1_000_000,
                                                               "delivery.report.only.error": True,
                                                               "on_delivery": self._report}))
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="outbox")

    def _report(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._errors.append(str(err))

    def produce(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None) -> None:
        produce = self._producer.produce
        while True:
            try:
                if partition is None:
                    produce(topic, value, key)
                else:
                    produce(topic, value, key, partition)
                return
            except BufferError:
                self._producer.poll(0.05)  # the local queue is full: let deliveries drain it

    def send_all(self, records: Iterable[Output]) -> int:
        """Produce (topic, key, record) triples; not yet acknowledged (``flush`` waits)."""
        records = list(records)
        # Encoded in one pass, then produced in another: each pass keeps its own code hot.
        values = [to_json_bytes(record) for _, _, record in records]
        n = dlq = 0
        remember = self.pipe.produced.remember
        for (topic, key, record), value in zip(records, values):
            self.produce(topic, key.encode() if key else None, value)
            remember(topic, value, record)
            n += 1
            dlq += topic == TOPIC_DLQ
        if dlq:
            self.pipe.count("dlq", dlq)
        return n

    async def flush(self, timeout_s: float = 60.0) -> None:
        """Wait until every record produced so far is acknowledged; raise if any was not."""
        remaining = await asyncio.get_running_loop().run_in_executor(self._executor, self._producer.flush, timeout_s)
        if self._errors or remaining:
            errors, self._errors = self._errors, []
            msg = (f"{len(errors)} outputs refused by the broker ({'; '.join(errors[:3])}), {remaining} not "
                   f"acknowledged within {timeout_s:.0f} s; the batch is not committed and will be replayed")
            raise DeliveryFailed(msg)

    async def deliver(self, records: Iterable[Output]) -> int:
        n = self.send_all(records)
        await self.flush()
        return n

    def poll(self) -> None:
        self._producer.poll(0)

    def close(self) -> None:
        self._producer.flush(10)
        self._executor.shutdown(wait=False)


class Stage:
    """One batched consumer. Subclasses set ``name``/``topics`` and implement ``begin``."""

    name = "stage"
    topics: tuple[str, ...] = ()
    batch = 2000
    within_s = 0.1
    # Batches begun whose finish (acks, landing) is still awaited, at most, before the stage waits
    # for the oldest. One worker was bound by waiting, not by the CPU: with one batch at a time each
    # stage sat idle for the broker's acks and the disk, batch after batch.
    overlap = 2

    def __init__(self, pipe: Pipeline, outbox: Outbox) -> None:
        self.pipe, self.outbox = pipe, outbox
        self.offsets = Offsets()
        self.assigned: set[TopicPartition] = set()
        self._consumer: Any = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"stage-{self.name}")
        self._paused = False
        self.stopping = False
        # Overlapping batches land one after another, in log order: the rows of a later batch
        # carry a later ingested_at, which the retrain trigger's watermark relies on (streams/sink.py).
        self.landing = asyncio.Lock()

    @property
    def group_id(self) -> str:
        return f"toneflow-{self.name}"

    # --- what a stage implements ---------------------------------------------------------------
    async def begin(self, raws: list[Raw]) -> Awaitable[None]:
        """Begin one batch; return what finishes it.

        Batches begin one after another, in log order, on the event loop: decode, apply to the
        stage's state, hand the outputs to the outbox (so outputs, changelog entries included,
        are produced in log order). What is returned finishes the batch: it waits for the acks
        and the landing of its rows, then calls ``self.offsets.done`` for its records, and may
        run while the next batches begin (``overlap``). Commits follow ``Offsets``: never past a
        record whose batch has not finished.
        """
        raise NotImplementedError

    def on_assign(self, added: set[TopicPartition], kept: set[TopicPartition]) -> None:
        """Called on the consumer's thread before records of ``added`` partitions are handled."""

    def on_revoke(self, revoked: set[TopicPartition]) -> None:
        """Called on the consumer's thread after the done offsets of ``revoked`` were committed."""

    def ready(self) -> bool:
        """False holds the consumer (paused) until it turns true again (back-pressure)."""
        return True

    def check(self) -> None:
        """Raise an error a background part of the stage ended with."""

    async def drain(self) -> None:
        """Called when the stage stops: finish what can be finished quickly."""

    # --- the engine ------------------------------------------------------------------------------
    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _open(self) -> None:
        from confluent_kafka import Consumer

        conf = consumer_config(self.pipe.settings, self.group_id, **{
            "partition.assignment.strategy": "range",
            "enable.auto.offset.store": False,
            # Large fetches: a batch of 2,000 small records arrives in one or two fetches. The broker
            # holds a fetch until 200 KB (~300 records) are there or 100 ms passed: answering each
            # fetch with whatever had just arrived made many small requests, broker CPU and
            # librdkafka wake-ups per event (benchmarks/ab_pipeline.py, docs/benchmarks.md); a quiet
            # partition's records wait at most the 100 ms.
            "fetch.wait.max.ms": 100,
            "fetch.min.bytes": 200_000,
            "queued.min.messages": 20_000,
        })
        self._consumer = Consumer(conf)
        self._consumer.subscribe(list(self.topics), on_assign=self._assigned, on_revoke=self._revoked)

    def _assigned(self, consumer: Any, partitions: list[Any]) -> None:
        new = {(tp.topic, tp.partition) for tp in partitions}
        added, kept = new - self.assigned, new & self.assigned
        self.offsets.forget(self.assigned - new)
        self.assigned = new
        self._paused = False
        log.warning("%s: assigned %d partitions (%d new)", self.name, len(new), len(added))
        self.pipe.count(f"{self.name}_rebalances")
        self.on_assign(added, kept)
        if self.pipe.on_assigned is not None:
            self.pipe.on_assigned(self.group_id, new)

    def _revoked(self, consumer: Any, partitions: list[Any]) -> None:
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        self._commit_now(consumer)
        self.offsets.forget(revoked)
        # Eager rebalancing revokes everything; ``assigned`` keeps the old set until the new
        # assignment so ``on_assign`` can tell kept partitions (state still valid) from added ones.
        self.on_revoke(revoked)

    def _commit_now(self, consumer: Any) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka import TopicPartition as KafkaTopicPartition

        offsets = self.offsets.committable()
        if not offsets:
            return
        try:
            result = consumer.commit(offsets=[KafkaTopicPartition(t, p, o) for (t, p), o in offsets.items()],
                                     asynchronous=False)
        except KafkaException as err:
            # Not fatal for data (the records replay); a lost group membership ends here too.
            log.warning("%s: commit failed (%s); retried with the next commit, replayed after a crash", self.name, err)
            return
        # A commit that succeeds as a request can still fail per partition (the error is on the entry).
        failed = [tp for tp in result or () if tp.error is not None]
        if failed:
            log.warning("%s: commit failed for %d partition(s) (%s: %s); retried with the next commit",
                        self.name, len(failed), f"{failed[0].topic}[{failed[0].partition}]", failed[0].error)
        self.offsets.committed({(tp.topic, tp.partition): tp.offset for tp in result or () if tp.error is None})

    def _consume(self) -> list[Raw]:
        consumer = self._consumer
        if not self.ready():
            if not self._paused and self.assigned:
                from confluent_kafka import TopicPartition as KafkaTopicPartition

                consumer.pause([KafkaTopicPartition(t, p) for t, p in self.assigned])
                self._paused = True
        elif self._paused:
            from confluent_kafka import TopicPartition as KafkaTopicPartition

            consumer.resume([KafkaTopicPartition(t, p) for t, p in self.assigned])
            self._paused = False
        self._commit_now(consumer)
        msgs = consumer.consume(self.batch, self.within_s)
        raws = []
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.fatal():
                    msg = f"{self.name}: fatal consumer error: {err}"
                    raise ToneflowError(msg)
                log.warning("%s: consumer error: %s", self.name, err)
                continue
            raws.append(Raw(m.topic(), m.partition(), m.offset(), m.key(), m.value()))
        return raws

    def _close(self) -> None:
        if self._consumer is not None:
            self._commit_now(self._consumer)
            self._consumer.close()  # leaves the group at once: a restart is assigned without waiting
            self._consumer = None

    async def run(self) -> None:
        """Consume, begin and finish batches and commit until ``stopping``; an exception ends the worker."""
        await self._call(self._open)
        finishing: deque[asyncio.Future[None]] = deque()
        try:
            while not self.stopping:
                self.check()
                for task in finishing:
                    if task.done():
                        task.result()  # a batch that failed ends the stage now, not when its turn comes
                waited = time.perf_counter()
                raws = await self._call(self._consume)
                self.pipe.add_time("consume", waited)
                if not raws:
                    while finishing and finishing[0].done():
                        finishing.popleft().result()
                    continue
                self.offsets.track(raws)
                finishing.append(asyncio.ensure_future(await self.begin(raws)))
                self.pipe.count(f"{self.name}_in", len(raws))
                self.pipe.count(f"{self.name}_batches")  # records per batch: what the fixed costs are spread over
                while len(finishing) >= self.overlap or (finishing and finishing[0].done()):
                    await finishing.popleft()
            while finishing:  # stopping: finish what was begun, so that its offsets are committed
                await finishing.popleft()
            await self.drain()
        finally:
            for task in finishing:
                task.cancel()
            await self._call(self._close)
            self._executor.shutdown(wait=False)


def timed(pipe: Pipeline, stage: str, cpu: bool = False) -> _Timer:
    """``with timed(pipe, "sink"):`` adds the block's wall time to ``<stage>_us``; ``cpu=True``
    also its thread's CPU time to ``<stage>_cpu_us`` (only for a block that does not await)."""
    return _Timer(pipe, stage, cpu)


class _Timer:
    def __init__(self, pipe: Pipeline, stage: str, cpu: bool) -> None:
        self.pipe, self.stage, self.cpu = pipe, stage, cpu

    def __enter__(self) -> None:
        self.started = time.perf_counter()
        self.cpu_started = time.thread_time() if self.cpu else None

    def __exit__(self, *exc: object) -> None:
        self.pipe.add_time(self.stage, self.started, self.cpu_started)
