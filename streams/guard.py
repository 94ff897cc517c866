"""The feedback-loop guard: the one place that decides what a student may teach the next student.

A student that learns from its own served outputs amplifies its mistakes. The policy:

1. Labels always come from the teacher. A prompt whose edit was served by the teacher keeps that
   edit as its label (no second, paid call) *when the serving layer vouches for it* (``served_sig``,
   schemas/trust.py): an app can write any ``served_by``. A prompt served by a student, by nothing,
   or with a missing or wrong signature is labelled by the teacher before it can become a training
   example; the unvouched teacher-served ones are counted (``UNVOUCHED``, and in the warehouse as
   ``relabelled_unvouched`` of the ``teacher_spend`` view). ``needs_teacher_call`` decides.
2. A user's own ``final_edit`` is a human label and is kept whoever served the suggestion.
3. In a training set, examples whose project was served by a student are capped at
   ``TONEFLOW_STUDENT_SHARE_CAP`` of the rows (``cap_student_share``), so the training
   distribution stays anchored to teacher-served traffic.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any, TypeVar

from foundation.settings import get_settings
from schemas.events import PromptEvent
from schemas.trust import signing_key, vouched

log = logging.getLogger(__name__)

T = TypeVar("T")


# Teacher-served edits relabelled because no valid signature vouched for them, by reason, in this
# process; the labeler's log and the warehouse (labels not reused though teacher-served) show them too.
UNVOUCHED: Counter[str] = Counter()


def needs_teacher_call(event: PromptEvent, key: bytes | None = None) -> bool:
    """False only when the teacher produced the served edit and the serving layer vouches for it.

    ``key`` is the signing key shared with the server (schemas.trust.signing_key); by default the
    one of this process's settings.
    """
    if event.served_by is None or not event.served_by.by_teacher or event.served_edit is None:
        return True
    if vouched(signing_key(get_settings()) if key is None else key, event):
        return False
    reason = "unsigned" if event.served_sig is None else "bad_signature"
    UNVOUCHED[reason] += 1
    n = UNVOUCHED[reason]
    if n in (1, 10, 100) or n % 1000 == 0:  # a whole fleet of unsigned producers must not flood the log
        # %r: ids are app data; a newline or terminal escape in one must not forge or garble log lines
        log.warning("prompt %r/%r says it was served by the teacher but is %s; relabelling it (%d so far); "
                    "a server on another data dir needs the worker's TONEFLOW_SERVE_SIGNING_KEY",
                    event.project_id, event.event_id, reason.replace("_", " "), n)
    return True


def cap_student_share(rows: Sequence[T], is_student: Sequence[bool], cap: float, seed: int = 0) -> list[T]:
    """Drop student-served rows (seeded, uniformly) until they are at most ``cap`` of the result."""
    if not 0.0 <= cap <= 1.0:
        msg = f"student share cap must be in [0, 1], got {cap}"
        raise ValueError(msg)
    teacher_rows = [r for r, s in zip(rows, is_student) if not s]
    student_rows = [r for r, s in zip(rows, is_student) if s]
    # s / (t + s) <= cap  <=>  s <= cap * t / (1 - cap)
    allowed = len(student_rows) if cap >= 1.0 else int(cap * len(teacher_rows) / (1.0 - cap))
    if len(student_rows) > allowed:
        student_rows = random.Random(seed).sample(student_rows, allowed)
    keep = {id(r) for r in (*teacher_rows, *student_rows)}
    return [r for r in rows if id(r) in keep]


def describe() -> dict[str, Any]:
    """The policy as data, for reports and snapshots."""
    return {"labels_from": "teacher", "reuse_teacher_served_edit": True, "reuse_needs_serving_signature": True,
            "relabel_student_served": True, "user_final_edit_kept": True}
