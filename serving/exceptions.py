"""Errors of the serving layer; each message says what to do next."""

from __future__ import annotations

from foundation.errors import ToneflowError


class ServingError(ToneflowError):
    """Base of serving errors."""


class TrafficPlanError(ServingError):
    """The traffic plan file is unreadable or inconsistent."""

    exit_code = 2


class NoStudentLoaded(ServingError):
    """A student arm was asked to answer before any student could be loaded."""

    def __init__(self, model: str, reason: str) -> None:
        self.model, self.reason = model, reason
        msg = (f"no student loaded for {model!r} ({reason}); train one with `toneflow train` "
               "or point the traffic plan at the teacher")
        super().__init__(msg)


class RolloutError(ServingError):
    """The online gate cannot act (no candidate, unknown arm, ...)."""

    exit_code = 2


class PredictInputError(ServingError):
    """A line of a ``toneflow predict --input`` file is not ``{"id", "prompt"}``."""

    exit_code = 2


class ModelUnavailable(ServingError):
    """The student or teacher asked for cannot give an edit (none trained, teacher failed)."""
