"""The feedback-loop guard: the one place that decides what a student may teach the next student.

A student that learns from its own served outputs amplifies its mistakes. The policy:

1. Labels always come from the teacher. A prompt whose edit was served by the teacher keeps that
   edit as its label (no second, paid call); a prompt served by a student (or by nothing) is
   labelled by the teacher before it can become a training example. ``needs_teacher_call`` decides.
2. A user's own ``final_edit`` is a human label and is kept whoever served the suggestion.
3. In a training set, examples whose project was served by a student are capped at
   ``TONEFLOW_STUDENT_SHARE_CAP`` of the rows (``cap_student_share``), so the training
   distribution stays anchored to teacher-served traffic.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, TypeVar

from schemas.events import PromptEvent

T = TypeVar("T")


def needs_teacher_call(event: PromptEvent) -> bool:
    """False only when the teacher already produced the served edit (reuse it, do not pay twice)."""
    return not (event.served_by is not None and event.served_by.by_teacher and event.served_edit is not None)


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
    return {"labels_from": "teacher", "reuse_teacher_served_edit": True,
            "relabel_student_served": True, "user_final_edit_kept": True}
