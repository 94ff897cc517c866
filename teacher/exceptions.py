"""Errors the teacher package raises. Per-prompt failures are *not* exceptions: they come back as
``Label``s with ``error_kind`` set (see ``teacher.base``). These are for the whole teacher being
unusable, where carrying on would only fail every prompt the same way."""

from __future__ import annotations

from foundation.errors import ConfigError, ToneflowError


class TeacherError(ToneflowError):
    """Base of the teacher's errors."""


class TeacherConfigError(ConfigError, TeacherError):
    """The teacher is misconfigured (no endpoint, bad API key, unknown model, unknown kind)."""


class TeacherRateLimited(TeacherError):
    """The endpoint answered 429; ``retry_after`` is the wait it asked for, in seconds, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LibraryError(TeacherError):
    """The offline teacher's look library is malformed (a bad edit, a duplicate name)."""
