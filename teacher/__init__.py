"""Teachers: turn a look request into an edit. See ``teacher.base`` for the contract.

``get_teacher(settings)`` builds the configured one: ``offline`` (the embedded default, a curated
look library + MiniLM, no network) or ``openai`` (any OpenAI-compatible endpoint). Heavy imports
(torch, transformers, openai) happen only when a teacher is built.
"""

from __future__ import annotations

from typing import Any

from foundation.settings import Settings
from teacher.base import RETRYABLE_KINDS, Label, Teacher
from teacher.exceptions import TeacherConfigError, TeacherError

TEACHER_KINDS: tuple[str, ...] = ("offline", "openai")


def get_teacher(settings: Settings, kind: str | None = None, **overrides: Any) -> Teacher:
    """The teacher ``kind`` (default ``settings.teacher``), configured from ``settings``.

    ``overrides`` go to the constructor, e.g. ``get_teacher(s, "offline", temperature=0.7, seed=3)``.
    """
    kind = kind or settings.teacher
    if kind == "offline":
        from teacher.offline import OfflineTeacher

        options: dict[str, Any] = {"temperature": settings.teacher_temperature, "seed": settings.seed,
                                   "cache_dir": settings.data_path / "cache"}
        return OfflineTeacher(**{**options, **overrides})
    if kind == "openai":
        from teacher.openai_teacher import OpenAITeacher

        return OpenAITeacher.from_settings(settings, **overrides)
    msg = f"unknown teacher {kind!r}; use one of {', '.join(TEACHER_KINDS)} (TONEFLOW_TEACHER)"
    raise TeacherConfigError(msg)


__all__ = ["RETRYABLE_KINDS", "TEACHER_KINDS", "Label", "Teacher", "TeacherConfigError", "TeacherError",
           "get_teacher"]
