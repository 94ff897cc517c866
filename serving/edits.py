"""Turn look requests into edits with the current student or the teacher.

The editor's ``--prompt`` flags use this: the CLI root hands :func:`predict_edits` to
``editor.cli.register``, so the editor itself never imports a model. Heavy imports stay inside the
functions; a missing student or teacher becomes one line telling the user what to do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from foundation.errors import ToneflowError
from schemas.edit import Edit
from serving.exceptions import ModelUnavailable

NO_STUDENT = "no trained student{detail}: train one with `toneflow train`, or pass --teacher to use the teacher"


def student_edits(settings: Any, prompts: Sequence[str], name: str = "current") -> tuple[list[Edit], str]:
    """Edits from the student ``name`` and a label naming it (``student:<version>``)."""
    from trainer.registry import load_student

    try:
        student = load_student(settings, name)
    except ToneflowError as err:
        raise ModelUnavailable(NO_STUDENT.format(detail=f" ({err})")) from None
    edits = list(student.predict(list(prompts)))
    return edits, f"student:{getattr(student, 'version', name)}"


async def _label(settings: Any, prompts: Sequence[str], kind: str | None) -> tuple[list[Any], str]:
    from teacher import get_teacher

    teacher = get_teacher(settings, kind)
    try:
        labels = await teacher.label(list(prompts))
    finally:
        await teacher.aclose()
    return labels, f"teacher:{teacher.name}@{teacher.version}"


def teacher_edits(settings: Any, prompts: Sequence[str], kind: str | None = None) -> tuple[list[Edit], str]:
    """Edits from the teacher (``kind`` default: settings.teacher); a failed label is an error."""
    labels, who = asyncio.run(_label(settings, prompts, kind))
    edits = []
    for label in labels:
        if not label.ok:
            msg = f"the teacher could not label {label.prompt!r}: {label.error}"
            raise ModelUnavailable(msg)
        edits.append(label.edit)
    return edits, who


def predict_edits(settings: Any, prompts: Sequence[str], model: str = "student") -> tuple[list[Edit], str]:
    """``model`` is ``student[:NAME]`` or ``teacher[:KIND]``; returns the edits and who made them."""
    source, _, name = model.partition(":")
    if source == "student":
        return student_edits(settings, prompts, name or "current")
    if source == "teacher":
        return teacher_edits(settings, prompts, name or None)
    msg = f"unknown model {model!r}: use student[:NAME] or teacher[:KIND] (e.g. teacher:offline)"
    raise ModelUnavailable(msg)
