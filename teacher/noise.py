"""LLM-like variation for the offline teacher (``temperature > 0``).

A real teacher sampled at temperature > 0 gives the same prompt slightly different edits: values
move a little, it likes round numbers, it sometimes adds a habitual touch (a bit of vibrance) or
leaves the filter out. Simulated data needs that noise, so the students see realistic labels.

Guarantees: the variation is a pure function of (seed, normalised prompt, temperature): the same
prompt always gets the same noisy edit for a given seed, so a replay after a crash gives the same
label. Direction is kept: a parameter of magnitude >= ``KEEP_SIGN_ABOVE`` never changes sign, and
an empty edit stays empty (noise never invents an edit for "remove the dog").
"""

from __future__ import annotations

import hashlib

import numpy as np

from teacher.library import VECTOR_KEYS

KEEP_SIGN_ABOVE = 8.0
# Touches a chat model habitually adds, with the sign it adds them with.
_HABITS: tuple[tuple[str, float], ...] = (
    ("vibrance", 1), ("contrast", 1), ("structure", 1), ("highlights", -1), ("shadows", 1), ("sharpen", 1),
)
_INDEX = {key: i for i, key in enumerate(VECTOR_KEYS)}


def rng_for(seed: int, normalised_prompt: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}\x00{normalised_prompt}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def perturb(vector: np.ndarray, flt: tuple[str, int] | None, temperature: float,
            rng: np.random.Generator) -> tuple[np.ndarray, tuple[str, int] | None]:
    """A plausible variant of (vector, filter); identity at temperature 0."""
    if temperature <= 0 or (not vector.any() and flt is None):
        return vector, flt
    t = float(temperature)
    out = vector.copy()
    active = np.flatnonzero(np.abs(out) >= 0.5)
    factors = np.clip(rng.normal(1.0, 0.3 * t, size=len(active)), 0.4, 1.6)
    shifts = rng.normal(0.0, 4.0 * t, size=len(active))
    for i, factor, shift in zip(active, factors, shifts, strict=True):
        value = out[i] * factor + shift
        if abs(out[i]) >= KEEP_SIGN_ABOVE and np.sign(value) != np.sign(out[i]):
            value = out[i] * 0.4
        out[i] = value
    if rng.random() < min(0.6, 0.3 * t):
        name, sign = _HABITS[int(rng.integers(len(_HABITS)))]
        if abs(out[_INDEX[name]]) < 0.5:
            out[_INDEX[name]] = sign * float(rng.choice([5.0, 10.0, 15.0]))
    if rng.random() < min(0.8, 0.6 * t):  # chat models favour multiples of 5
        out = np.round(out / 5.0) * 5.0
    if flt is not None:
        if rng.random() < min(0.5, 0.15 * t):
            flt = None
        else:
            intensity = flt[1] * float(np.clip(rng.normal(1.0, 0.25 * t), 0.5, 1.5))
            flt = (flt[0], int(max(5, min(100, round(intensity)))))
    return out, flt
