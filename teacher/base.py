"""The teacher contract: a prompt goes in, a ``Label`` (an edit plus its provenance) comes out.

Guarantees every implementation keeps:

* ``label(prompts)`` returns exactly one ``Label`` per prompt, in the same order.
* A prompt that cannot be labelled comes back as a ``Label`` with ``edit=None``, an
  ``error_kind`` and a human-readable ``error``; it never raises for one prompt's sake. It raises
  only when the teacher as a whole is unusable (``teacher.exceptions.TeacherConfigError``).
* Every edit returned is valid (``schemas.validate_edit`` passes); model output that had to be
  changed to get there lists each change in ``repairs``.
* ``teacher`` names who produced the label; the offline stand-in always says ``model="offline"``.
* ``unsupported`` lists the parts of a request the colour tools cannot do ("remove the dog" in
  "brighten it and remove the dog"); the edit does the rest (the offline teacher fills it in).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from schemas.edit import Edit
from schemas.events import TeacherRef

ErrorKind = Literal["teacher_unavailable", "teacher_invalid_output", "teacher_rejected", "spend_limit"]

# The prompt itself is fine in these cases; the labeler must retry later, never dead-letter it
# (docs/reliability.md §5: never dead-letter a valid prompt because the teacher was busy). A spend limit is
# lifted by raising TONEFLOW_TEACHER_SPEND_LIMIT_USD or by a new process budget.
RETRYABLE_KINDS: frozenset[str] = frozenset({"teacher_unavailable", "spend_limit"})


@dataclass(frozen=True)
class Label:
    """One prompt's result. ``edit is None`` exactly when the teacher failed on it."""

    prompt: str
    edit: Edit | None
    teacher: TeacherRef
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0  # USD, all attempts included
    cached: bool = False
    repairs: tuple[str, ...] = ()  # str(Repair) of each repair applied
    error_kind: str | None = None
    error: str | None = None
    # Parts of the request the colour tools cannot do ("remove the dog" in "brighten it and remove
    # the dog"): the edit does the rest, and says what it left out.
    unsupported: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.edit is not None

    @property
    def retryable(self) -> bool:
        """True for transient failures: retry later, do not dead-letter."""
        return self.error_kind in RETRYABLE_KINDS

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (canonical edit, teacher as {model, version})."""
        return {
            "prompt": self.prompt,
            "edit": self.edit.canonical_dict() if self.edit is not None else None,
            "teacher": self.teacher.model_dump(),
            "latency_ms": round(self.latency_ms, 3),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": self.cost,
            "cached": self.cached,
            "repairs": list(self.repairs),
            "error_kind": self.error_kind,
            "error": self.error,
            "unsupported": list(self.unsupported),
        }


@runtime_checkable
class Teacher(Protocol):
    """What the labeler, the trainer and the CLI code against."""

    name: str  # "offline" | "openai"
    version: str  # changes whenever the same prompt could get a different edit

    async def label(self, prompts: Sequence[str]) -> list[Label]:
        """One Label per prompt, same order; per-prompt failures are Labels with an error."""
        ...

    def warm(self) -> None:
        """Load now what the first ``label`` call would otherwise load (a model, the library's vectors).

        The stream worker calls it before its stages join their consumer groups (streams/worker.py).
        A teacher with nothing to load returns at once.
        """
        ...

    async def aclose(self) -> None:
        """Release connections and models; the teacher is unusable afterwards."""
        ...
