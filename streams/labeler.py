"""The labeler agent: prompts → teacher → ``toneflow.labels``.

Per batch (at most ``settings.label_batch`` prompts or ``LABEL_WITHIN_S`` seconds):
  1. decode every record; bad ones become DLQ records (never raise, never block the partition);
  2. prompts the teacher already served keep their served edit (streams.guard), the rest are
     de-duplicated by text and sent to the teacher in one bounded call;
  3. transient teacher failures (busy, rate-limited, spend limit) are retried with backoff while
     the batch is held — a valid prompt is never dead-lettered because the teacher was busy;
     permanent ones (invalid output) go to the DLQ with the teacher's reason;
  4. labels and DLQ records are produced and acknowledged by the broker;
  5. only then are the input records acked (committed on the next commit interval).
Guarantee: at-least-once; a replay re-labels from the teacher's cache and produces duplicate
labels with the same event_id, which every consumer de-duplicates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from foundation.failpoints import failpoint
from schemas.events import TOPIC_DLQ, TOPIC_LABELS, LabelEvent, PromptEvent, TeacherRef
from streams.codec import Raw, dead_letter, decode, raw_of
from streams.guard import needs_teacher_call
from streams.outputs import deliver
from streams.pipeline import Pipeline

log = logging.getLogger(__name__)

LABEL_WITHIN_S = 0.25
RETRY_BASE_S, RETRY_MAX_S = 0.5, 30.0


def reused_label(prompt: PromptEvent, raw: Raw) -> LabelEvent:
    served = prompt.served_by
    assert served is not None and prompt.served_edit is not None
    return LabelEvent(
        event_id=prompt.event_id, project_id=prompt.project_id, user_id=prompt.user_id, prompt=prompt.prompt,
        prompt_ts=prompt.ts, teacher=TeacherRef(model=served.model, version=served.version),
        edit=prompt.served_edit, latency_ms=0.0, reused_served_edit=True, served_by=served,
        served_edit=prompt.served_edit, source=raw.source,
    )


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
        log.warning("teacher unavailable for %d prompts (%s: %s); holding the batch, retry in %.1f s",
                    len(todo), retry[0][1].error_kind, retry[0][1].error, delay)
        pipe.count("teacher_retries", len(todo))
        await asyncio.sleep(delay)
        delay = min(delay * 2, RETRY_MAX_S)
    return results


async def label_batch(pipe: Pipeline, raws: list[Raw]) -> None:
    outputs: list[tuple[str, str | None, Any]] = []
    to_teacher: list[tuple[PromptEvent, Raw]] = []
    for raw in raws:
        prompt, bad = decode(raw, PromptEvent, "labeler.decode")
        if prompt is None:
            assert bad is not None  # decode returns exactly one of the two
            outputs.append((TOPIC_DLQ, raw.key.decode(errors="replace") if raw.key else None, bad))
            log.info("dead-lettered %s: %s", raw.where, bad.error)
        elif needs_teacher_call(prompt):
            to_teacher.append((prompt, raw))
        else:
            outputs.append((TOPIC_LABELS, prompt.project_id, reused_label(prompt, raw)))
            pipe.count("labels_reused")
    if to_teacher:
        started = time.perf_counter()
        labels = await teacher_labels(pipe, [p.prompt for p, _ in to_teacher])
        pipe.count("teacher_ms", int((time.perf_counter() - started) * 1000))
        for prompt, raw in to_teacher:
            label = labels[prompt.prompt]
            if not label.ok:
                outputs.append((TOPIC_DLQ, prompt.project_id, dead_letter(
                    raw, "labeler.teacher", label.error_kind or "teacher_failed", label.error or "", prompt.event_id)))
                continue
            outputs.append((TOPIC_LABELS, prompt.project_id, LabelEvent(
                event_id=prompt.event_id, project_id=prompt.project_id, user_id=prompt.user_id,
                prompt=prompt.prompt, prompt_ts=prompt.ts, teacher=label.teacher, edit=label.edit,
                repairs=list(label.repairs), latency_ms=label.latency_ms, prompt_tokens=label.prompt_tokens,
                completion_tokens=label.completion_tokens, cost=label.cost, cached=label.cached,
                served_by=prompt.served_by, served_edit=prompt.served_edit, source=raw.source)))
    failpoint("labeler.after_teacher_before_produce")
    pipe.count("labels", await deliver(pipe, outputs))


def register(pipe: Pipeline) -> None:
    if pipe.teacher is None:
        from teacher import get_teacher

        pipe.teacher = get_teacher(pipe.settings)

    @pipe.app.agent(pipe.topics["toneflow.prompts"], name="labeler", concurrency=1)
    async def labeler(stream: Any) -> None:
        async for events in stream.noack_take(pipe.settings.label_batch, within=LABEL_WITHIN_S):
            await label_batch(pipe, [raw_of(e) for e in events])
            for event in events:
                await stream.ack(event)
            pipe.count("prompts_in", len(events))
