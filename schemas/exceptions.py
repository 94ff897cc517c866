"""Errors raised by the contracts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from foundation.errors import ToneflowError


@dataclass(frozen=True)
class Violation:
    """One broken rule: where (a dotted path such as ``adjust.contrast``), what was there, why."""

    path: str
    value: Any
    reason: str

    def __str__(self) -> str:
        shown = repr(self.value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return f"{self.path or '<root>'}: {self.reason} (got {shown})"


class SchemaViolation(ToneflowError):
    """A record or edit breaks its contract. ``violations`` lists every broken rule."""

    def __init__(self, what: str, violations: list[Violation]) -> None:
        self.what = what
        self.violations = violations
        first = violations[0] if violations else Violation("", None, "invalid")
        more = f" (+{len(violations) - 1} more)" if len(violations) > 1 else ""
        msg = f"invalid {what}: {first}{more}"
        super().__init__(msg)

    @property
    def path(self) -> str:
        return self.violations[0].path if self.violations else ""

    @property
    def value(self) -> Any:
        return self.violations[0].value if self.violations else None


class RepairFailed(ToneflowError):
    """Model output that no repair can turn into an edit (not JSON, not an object)."""
