"""The labeler stage: prompts → teacher → ``toneflow.labels`` (consumer group ``toneflow-labeler``).

Per batch (at most ``settings.label_batch`` prompts or ``LABEL_WITHIN_S`` seconds):
  1. decode every record once; bad ones become DLQ records (never raise, never block the
     partition); the good ones are landed in the ``prompts`` table (``streams/sink.py``);
  2. prompts the teacher already served keep their served edit (streams.guard), and prompts the
     teacher's cache already holds (``cached_labels``, when the teacher has one) are labelled at
     once; these labels and DLQ records are produced, acknowledged by the broker, and only then
     their records marked done;
  3. the rest go to the teacher in the background (``TeacherCalls``): at most
     ``settings.label_in_flight`` prompts in calls at once, at most ``settings.label_backlog``
     held (queued or in flight). With less room left than a batch, the stage pauses its
     partitions (``LabelerStage.ready``): the consumer stays in its group but fetches nothing
     (back-pressure) instead of memory growing. Cached and served prompts of later batches are not
     held behind these calls;
  4. transient teacher failures (busy, rate-limited, spend limit) are retried with backoff while
     the prompts are held — a valid prompt is never dead-lettered because the teacher was busy;
     permanent ones (invalid output) go to the DLQ with the teacher's reason;
  5. when a call returns, its labels are produced and acknowledged, then its records marked done.
Records are marked done out of log order, but a partition is committed only up to its first record
not done (``streams.batch_stage.Offsets``), so a committed offset never passes a prompt still
waiting for its label: a crash replays every such prompt. Guarantee: at-least-once; a replay
re-labels from the teacher's cache and produces duplicate labels with the same event_id, which
every consumer de-duplicates. An exception in a teacher call (e.g. a wrong API key) ends the
worker, as one in the stage does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from foundation.failpoints import failpoint
from schemas.events import (
    SCHEMA_VERSION,
    TOPIC_DLQ,
    TOPIC_LABELS,
    TOPIC_PROMPTS,
    LabelEvent,
    PromptEvent,
    TeacherRef,
    construct,
    utcnow,
)
from schemas.trust import signing_key
from streams.batch_stage import Outbox, Stage, timed
from streams.codec import Raw, dead_letter, decode
from streams.guard import needs_teacher_call
from streams.outputs import Output
from streams.pipeline import Pipeline
from streams.sink import Decoded, land

log = logging.getLogger(__name__)

LABEL_WITHIN_S = 0.25
RETRY_BASE_S, RETRY_MAX_S = 0.5, 30.0

# (prompt, its record, what to mark done when its label is durable)
Held = tuple[PromptEvent, Raw, Any]


# The teacher of a reused label, by (model, version) of its served_by: a server answers with a
# handful, and validating a new TeacherRef for every prompt was ~3 µs of each. Frozen, so shared.
_TEACHERS: dict[tuple[str, str], TeacherRef] = {}


def _teacher_ref(model: str, version: str) -> TeacherRef:
    ref = _TEACHERS.get((model, version))
    if ref is None:
        if len(_TEACHERS) >= 1024:  # a flood of distinct versions: start over, never grow
            _TEACHERS.clear()
        ref = _TEACHERS[(model, version)] = TeacherRef(model=model, version=version)
    return ref


def reused_label(prompt: PromptEvent, raw: Raw) -> LabelEvent:
    served = prompt.served_by
    assert served is not None and prompt.served_edit is not None
    # Not validated (schemas.events.construct, every field given): every field comes from the
    # prompt, validated when it was decoded, or is a constant within its bounds; validating them
    # again was a quarter of the labeler's time, and pydantic's model_construct (its walk over the
    # fields for aliases and defaults) was still the largest part of building a label.
    return construct(
        LabelEvent, event_id=prompt.event_id, project_id=prompt.project_id, user_id=prompt.user_id,
        prompt=prompt.prompt, prompt_ts=prompt.ts, teacher=_teacher_ref(served.model, served.version),
        edit=prompt.served_edit, repairs=[], latency_ms=0.0, prompt_tokens=0, completion_tokens=0, cost=0.0,
        cached=False, reused_served_edit=True, served_by=served, served_edit=prompt.served_edit, source=raw.source,
        ts=utcnow(), schema_version=SCHEMA_VERSION,
    )


def teacher_label(prompt: PromptEvent, raw: Raw, label: Any) -> Output:
    """The label (or DLQ record) for a prompt from the teacher's answer."""
    if not label.ok:
        return (TOPIC_DLQ, prompt.project_id, dead_letter(
            raw, "labeler.teacher", label.error_kind or "teacher_failed", label.error or "", prompt.event_id))
    return (TOPIC_LABELS, prompt.project_id, LabelEvent(
        event_id=prompt.event_id, project_id=prompt.project_id, user_id=prompt.user_id,
        prompt=prompt.prompt, prompt_ts=prompt.ts, teacher=label.teacher, edit=label.edit,
        repairs=list(label.repairs), latency_ms=label.latency_ms, prompt_tokens=label.prompt_tokens,
        completion_tokens=label.completion_tokens, cost=label.cost, cached=label.cached,
        served_by=prompt.served_by, served_edit=prompt.served_edit, source=raw.source))


async def teacher_labels(pipe: Pipeline, texts: list[str]) -> dict[str, Any]:
    """Label distinct prompt texts; retries transient failures until they succeed or turn permanent."""
    results: dict[str, Any] = {}
    todo = list(dict.fromkeys(texts))
    delay = RETRY_BASE_S
    while todo:
        labels = await pipe.teacher.label(todo)
        retry = []
        for text, label in zip(todo, labels):
            if label.ok or not label.retryable:
                results[text] = label
            else:
                retry.append((text, label))
        pipe.count("teacher_calls", len(todo))
        if not retry:
            break
        todo = [t for t, _ in retry]
        log.warning("teacher unavailable for %d prompts (%s: %s); holding them, retry in %.1f s",
                    len(todo), retry[0][1].error_kind, retry[0][1].error, delay)
        pipe.count("teacher_retries", len(todo))
        await asyncio.sleep(delay)
        delay = min(delay * 2, RETRY_MAX_S)
    return results


class Permits:
    """A counter of free places handed out several at once, first come first served.

    Waiters queue in order and are woken only when their whole request fits, so a large request is
    never starved by small ones and a release wakes only those it lets through (no thundering herd
    with hundreds of waiting calls).
    """

    def __init__(self, n: int) -> None:
        self.free = n
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def take(self, n: int) -> None:
        if not self._waiters and self.free >= n:
            self.free -= n
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((n, fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.give(n)  # granted just as it was cancelled: hand the places back
            elif (n, fut) in self._waiters:
                self._waiters.remove((n, fut))
            raise

    def give(self, n: int) -> None:
        self.free += n
        while self._waiters and self.free >= self._waiters[0][0]:
            want, fut = self._waiters.popleft()
            if fut.done():  # cancelled while queued; its task removes nothing more
                continue
            self.free -= want
            fut.set_result(None)


class TeacherCalls:
    """Teacher calls in the background: bounded in flight and in backlog; see the module docstring.

    ``ack(tokens)`` is called once a call's outputs are acknowledged by the broker.
    """

    def __init__(self, pipe: Pipeline, ack: Callable[[list[Any]], Awaitable[None]], outbox: Outbox | None = None) -> None:
        self.pipe, self.ack = pipe, ack
        self.outbox = outbox if outbox is not None else pipe.outbox  # the labeler's own producer
        # A teacher with a cache lookup is a remote one that answers each prompt in its own request:
        # one call per prompt frees its place the moment its answer is in, instead of when the
        # slowest prompt of a chunk is. A local teacher labels a chunk in one pass.
        remote = getattr(pipe.teacher, "cached_labels", None) is not None
        self.chunk = 1 if remote else pipe.settings.label_in_flight
        self.in_flight = Permits(pipe.settings.label_in_flight)
        self.backlog_size = max(pipe.settings.label_backlog, pipe.settings.label_in_flight)
        self.backlog = Permits(self.backlog_size)
        self.tasks: set[asyncio.Task[None]] = set()
        self.error: BaseException | None = None

    def check(self) -> None:
        """Raise the first exception a background call ended with (it ends the worker)."""
        if self.error is not None:
            raise self.error

    async def submit(self, held: list[Held]) -> None:
        """Start calls for ``held``; waits (back-pressure) while the backlog is full."""
        if self.chunk == 1:  # one call per distinct text; repeats of a text ride along with the first
            by_text: dict[str, list[Held]] = {}
            for item in held:
                by_text.setdefault(item[0].prompt, []).append(item)
            parts = list(by_text.values())
        else:
            parts = [held[start:start + self.chunk] for start in range(0, len(held), self.chunk)]
        for part in parts:
            # A part larger than the whole backlog (thousands of copies of one text) takes all of
            # it rather than waiting forever for room that cannot exist.
            await self.backlog.take(min(len(part), self.backlog_size))
            self.check()
            task = asyncio.get_running_loop().create_task(self._call(part))
            self.tasks.add(task)
            task.add_done_callback(self._done)

    async def _call(self, part: list[Held]) -> None:
        texts = list(dict.fromkeys(p.prompt for p, _, _ in part))
        await self.in_flight.take(len(texts))
        try:
            started = time.perf_counter()
            labels = await teacher_labels(self.pipe, texts)
            self.pipe.add_time("teacher_wait", started)
        finally:
            self.in_flight.give(len(texts))
        failpoint("labeler.after_teacher_before_produce")
        self.pipe.count("labels", await self.outbox.deliver([teacher_label(p, r, labels[p.prompt])
                                                                  for p, r, _ in part]))
        await self.ack([e for _, _, e in part])
        self.backlog.give(min(len(part), self.backlog_size))

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        assert error is not None
        if self.error is None:
            self.error = error
            # The stage raises it on its next turn (at least every LABEL_WITHIN_S, records or not),
            # so a worker whose stream went quiet never idles with prompts it will not label.
            log.error("a teacher call failed (%r); ending the worker, its prompts are not committed", error)


def split_batch(pipe: Pipeline, items: list[tuple[Raw, Any]]) -> tuple[list[Output], list[Any], list[Held]]:
    """(outputs ready now, tokens they cover, prompts held for the teacher) of (record, token) pairs."""
    outputs, ready, held, _ = split_batch_decoded(pipe, items)
    return outputs, ready, held


def split_batch_decoded(pipe: Pipeline, items: list[tuple[Raw, Any]]
                        ) -> tuple[list[Output], list[Any], list[Held], list[Decoded]]:
    """``split_batch``, and each record with its decoded prompt (None if it did not decode).

    In passes over the whole batch (decode all, then check every served edit, then build every
    reused label), not record by record: each pass keeps one piece of code and its data hot.
    """
    key = signing_key(pipe.settings)  # once per batch: it is the same for every prompt
    decoded: list[Decoded] = []
    outputs: list[Output] = []
    ready: list[Any] = []
    good: list[tuple[PromptEvent, Raw, Any]] = []
    for raw, event in items:
        prompt, bad = decode(raw, PromptEvent, "labeler.decode")
        decoded.append((raw, prompt))
        if prompt is None:
            assert bad is not None  # decode returns exactly one of the two
            outputs.append((TOPIC_DLQ, raw.key.decode(errors="replace") if raw.key else None, bad))
            log.info("dead-lettered %s: %r", raw.where, bad.error)  # %r: the error quotes app data
            ready.append(event)
        else:
            good.append((prompt, raw, event))
    calls = [needs_teacher_call(prompt, key) for prompt, _, _ in good]
    to_teacher: list[Held] = []
    reused = 0
    for item, call in zip(good, calls):
        if call:
            to_teacher.append(item)
        else:
            prompt, raw, event = item
            outputs.append((TOPIC_LABELS, prompt.project_id, reused_label(prompt, raw)))
            ready.append(event)
            reused += 1
    if reused:
        pipe.count("labels_reused", reused)
    lookup = getattr(pipe.teacher, "cached_labels", None)
    if to_teacher and lookup is not None:
        hits = lookup([p.prompt for p, _, _ in to_teacher])
        missing = []
        for (prompt, raw, event), hit in zip(to_teacher, hits):
            if hit is None:
                missing.append((prompt, raw, event))
            else:
                outputs.append(teacher_label(prompt, raw, hit))
                ready.append(event)
        pipe.count("labels_cached", len(to_teacher) - len(missing))
        to_teacher = missing
    return outputs, ready, to_teacher, decoded


class LabelerStage(Stage):
    """The labeler on the batch engine (``streams/batch_stage.py``); see the module docstring."""

    name = "labeler"
    topics = (TOPIC_PROMPTS,)
    within_s = LABEL_WITHIN_S

    def __init__(self, pipe: Pipeline, outbox: Outbox) -> None:
        super().__init__(pipe, outbox)
        if pipe.teacher is None:
            from teacher import get_teacher

            pipe.teacher = get_teacher(pipe.settings)
        self.batch = pipe.settings.label_batch

        async def ack(tokens: list[Any]) -> None:
            self.offsets.done(tokens)

        self.calls = TeacherCalls(pipe, ack, outbox)

    def ready(self) -> bool:
        return self.calls.backlog.free >= min(self.batch, self.calls.backlog_size)

    def check(self) -> None:
        self.calls.check()

    async def begin(self, raws: list[Raw]) -> Awaitable[None]:
        pipe = self.pipe
        with timed(pipe, "labeler_decode", cpu=True):
            outputs, ready, held, prompts = split_batch_decoded(pipe, [(raw, raw) for raw in raws])
        sent = 0
        if ready:
            failpoint("labeler.after_teacher_before_produce")
            with timed(pipe, "labeler_send", cpu=True):
                sent = self.outbox.send_all(outputs)
        await self.calls.submit(held)
        pipe.count("prompts_in", len(raws))
        return self._finish(prompts, ready, sent)

    async def _finish(self, prompts: list[Decoded], ready: list[Any], sent: int) -> None:
        """The prompts landed and the labels produced for ``ready`` acknowledged; then they are done."""
        async def labels_acknowledged() -> None:
            if ready:
                with timed(self.pipe, "labeler_produce"):
                    await self.outbox.flush()

        async def prompts_landed() -> None:
            async with self.landing:
                await land(self.pipe, {TOPIC_PROMPTS: prompts})

        await asyncio.gather(prompts_landed(), labels_acknowledged())
        self.pipe.count("labels", sent)
        self.offsets.done(ready)

    async def drain(self) -> None:
        """Stop: calls still in flight are not waited for (their prompts are not committed: replayed)."""
        for task in list(self.calls.tasks):
            task.cancel()
