"""Token and cost accounting for a paid teacher, with a spend limit.

Guarantees: ``cost`` of a call is computed from the tokens the server reported (``usage``), at
the configured prices; totals are exact sums of the per-call figures. The limit is checked before
every request: once spent >= limit no further request is sent and labels come back as
``spend_limit`` (retryable). Requests already in flight when the limit is crossed still finish, so
the overshoot is bounded by ``concurrency`` calls. The meter is per teacher instance (per process).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from schemas.events import MAX_TOKENS


@dataclass
class SpendMeter:
    price_input_per_1m: float
    price_output_per_1m: float
    limit_usd: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    requests: int = 0  # HTTP requests sent, successful or not
    failures: dict[str, int] = field(default_factory=dict)
    usage_clamped: int = 0  # usage figures that were not a token count in 0..MAX_TOKENS

    def tokens(self, reported: Any) -> int:
        """A server's reported token count as one the contracts accept (0..MAX_TOKENS).

        A broken or hostile server can report ``1e20``, ``-5``, ``NaN`` or text; the label event
        must still be valid (schemas/events.py bounds tokens), so such a figure is clamped and
        counted in ``usage_clamped`` instead of crashing the labeler.
        """
        if reported is None:
            return 0
        if isinstance(reported, bool) or not isinstance(reported, int | float) or \
                (isinstance(reported, float) and not math.isfinite(reported)):
            self.usage_clamped += 1
            return MAX_TOKENS if reported == math.inf else 0
        count = int(reported)
        if not 0 <= count <= MAX_TOKENS:
            self.usage_clamped += 1
            return min(max(count, 0), MAX_TOKENS)
        return count

    def price(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.price_input_per_1m + completion_tokens * self.price_output_per_1m) / 1e6

    def record(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Add one response's usage; returns its cost in USD."""
        cost = self.price(prompt_tokens, completion_tokens)
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.cost_usd += cost
        return cost

    @property
    def exhausted(self) -> bool:
        return self.limit_usd is not None and self.cost_usd >= self.limit_usd

    def as_dict(self) -> dict[str, object]:
        return {
            "requests": self.requests, "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens, "cost_usd": round(self.cost_usd, 8),
            "limit_usd": self.limit_usd, "failures": dict(self.failures),
            "usage_clamped": self.usage_clamped,
        }
