"""Retry policy for the OpenAI-compatible teacher (docs/reliability.md §5).

Classification of a failed call:
* transient — 408, 409, 429, 5xx, timeouts, connection errors: retried with exponential backoff and
  full jitter, honouring ``Retry-After`` / ``retry-after-ms``; after the retry budget the label is
  ``teacher_unavailable`` (retryable: the labeler tries again later, never dead-letters it);
* configuration — 401, 403, 404: every prompt would fail the same way, so the teacher raises
  ``TeacherConfigError`` instead of dead-lettering the whole stream;
* permanent — any other 4xx (400 "context too long", 422): ``teacher_rejected``, not retried.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal

Verdict = Literal["transient", "config", "permanent"]

TRANSIENT_STATUS = frozenset({408, 409, 429})
CONFIG_STATUS = frozenset({401, 403, 404})


def classify_status(status: int) -> Verdict:
    if status in TRANSIENT_STATUS or status >= 500:
        return "transient"
    if status in CONFIG_STATUS:
        return "config"
    return "permanent"


def retry_after_s(headers: object) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms``, ``retry-after`` seconds or date)."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    ms = get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        import datetime as _dt

        when = parsedate_to_datetime(value)
        return max(0.0, (when - _dt.datetime.now(when.tzinfo)).total_seconds())
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: attempt n waits U(0.5, 1) x min(cap, base x 2^(n-1))."""

    base_s: float = 0.5  # the SDK's own initial delay
    max_s: float = 8.0  # the SDK's cap; longer waits come only from Retry-After
    max_retry_after_s: float = 60.0  # a server asking for longer is treated as unavailable now

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float | None:
        """Seconds to wait before retry ``attempt`` (1-based); None = give up now."""
        if retry_after is not None:
            if retry_after > self.max_retry_after_s:
                return None
            # Honour the server's wait, plus a little jitter so clients do not return in lockstep.
            return retry_after + rng.uniform(0, 0.1 * max(retry_after, self.base_s))
        return rng.uniform(0.5, 1.0) * min(self.max_s, self.base_s * 2 ** (attempt - 1))
