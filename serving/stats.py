"""Two-proportion tests for the online gate (pure functions, hand-checkable).

Let ``d = p_candidate - p_champion`` with the unpooled standard error
``se = sqrt(p_c (1 - p_c) / n_c + p_h (1 - p_h) / n_h)``.

* Non-inferiority (margin δ): H0 ``d <= -δ`` vs H1 ``d > -δ``; ``z = (d + δ) / se``,
  ``p = 1 - Φ(z)``. p < α means "significantly not worse than the champion by more than δ".
* Worse: H0 ``d >= 0`` vs H1 ``d < 0``; ``z = d / se``, ``p = Φ(z)``. p < α means "significantly worse".

When se is 0 (both rates exactly 0 or 1) the test degenerates to the sign of the numerator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def wilson(x: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval (the warehouse views use the same formula)."""
    if n == 0:
        return 0.0, 1.0
    p = x / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


@dataclass(frozen=True)
class Comparison:
    diff: float
    se: float
    z_noninferior: float
    p_noninferior: float
    z_worse: float
    p_worse: float


def _one_sided(numerator: float, se: float, upper: bool) -> tuple[float, float]:
    if se == 0:
        z = math.copysign(math.inf, numerator) if numerator else 0.0
    else:
        z = numerator / se
    return z, (1.0 - normal_cdf(z)) if upper else normal_cdf(z)


def compare(x_c: int, n_c: int, x_h: int, n_h: int, margin: float) -> Comparison:
    """Candidate (x_c of n_c completed) against champion (x_h of n_h); both n must be > 0."""
    if n_c <= 0 or n_h <= 0:
        msg = "both arms need at least one project"
        raise ValueError(msg)
    p_c, p_h = x_c / n_c, x_h / n_h
    diff = p_c - p_h
    se = math.sqrt(p_c * (1 - p_c) / n_c + p_h * (1 - p_h) / n_h)
    z_ni, p_ni = _one_sided(diff + margin, se, upper=True)
    z_w, p_w = _one_sided(diff, se, upper=False)
    return Comparison(diff, se, z_ni, p_ni, z_w, p_w)
