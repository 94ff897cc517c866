"""Token and cost accounting for a paid teacher, with a spend limit.

Guarantees: ``cost`` of a call is computed from the tokens the server reported (``usage``), at
the configured prices; totals are exact sums of the per-call figures. The limit is checked before
every request: once spent >= limit no further request is sent and labels come back as
``spend_limit`` (retryable). Requests already in flight when the limit is crossed still finish, so
the overshoot is bounded by ``concurrency`` calls. The meter is per teacher instance (per process).
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
        }
