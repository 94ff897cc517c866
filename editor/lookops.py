"""The small set of parametric operations that filter recipes are written in.

Every op is a frozen dataclass (so its ``repr`` is a stable, hashable description used as the
cache key of the generated .cube) and a pure function on encoded sRGB float32 (..., 3) in [0, 1].
Ops that keep black and white fixed say so; all are monotone in luminance for the parameters used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from editor.colour import F32
from editor.pointwise import apply_pointwise

RGB = tuple[float, float, float]
Points = tuple[tuple[float, float], ...]

_LUMA_ENC = np.array([0.299, 0.587, 0.114], dtype=F32)  # Rec.601 luma: what "mono" mixes from


def _luma(x: np.ndarray) -> np.ndarray:
    return x @ _LUMA_ENC


def monotone_curve(points: Points, x: np.ndarray) -> np.ndarray:
    """Monotone cubic Hermite interpolation (Fritsch & Carlson 1980) through ``points``.

    Between monotone control points it never overshoots, so curves cannot invert tones; outside
    the first/last point it holds the end values (like a Lightroom/darktable curve).
    """
    px = np.array([p[0] for p in points], dtype=np.float64)
    py = np.array([p[1] for p in points], dtype=np.float64)
    h = np.diff(px)
    delta = np.diff(py) / h
    m = np.empty_like(py)
    m[0], m[-1] = delta[0], delta[-1]
    m[1:-1] = np.where(delta[:-1] * delta[1:] > 0, (delta[:-1] + delta[1:]) / 2, 0.0)
    for k in range(len(delta)):  # Fritsch–Carlson limiter: α² + β² ≤ 9 keeps each piece monotone
        if delta[k] == 0:
            m[k] = m[k + 1] = 0.0
            continue
        a, b = m[k] / delta[k], m[k + 1] / delta[k]
        s = a * a + b * b
        if s > 9:
            tau = 3 / np.sqrt(s)
            m[k], m[k + 1] = tau * a * delta[k], tau * b * delta[k]
    xc = np.clip(x, px[0], px[-1])
    k = np.clip(np.searchsorted(px, xc, side="right") - 1, 0, len(h) - 1)
    t = (xc - px[k]) / h[k]
    t2, t3 = t * t, t * t * t
    y = ((2 * t3 - 3 * t2 + 1) * py[k] + (t3 - 2 * t2 + t) * h[k] * m[k]
         + (-2 * t3 + 3 * t2) * py[k + 1] + (t3 - t2) * h[k] * m[k + 1])
    return y.astype(F32)


@dataclass(frozen=True)
class Adjust:
    """Our own pointwise adjust chain (same scales as the adjust tool), e.g. Adjust(contrast=20)."""

    params: tuple[tuple[str, int], ...] = ()
    selective: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return apply_pointwise(x, dict(self.params), {k: dict(v) for k, v in self.selective})


def adjust(selective: dict[str, dict[str, int]] | None = None, **params: int) -> Adjust:
    sel = tuple((k, tuple(sorted(v.items()))) for k, v in sorted((selective or {}).items()))
    return Adjust(tuple(sorted(params.items())), sel)


@dataclass(frozen=True)
class Curves:
    """Tone curves (control points in [0, 1]): ``master`` on all channels, then per channel."""

    master: Points = ()
    r: Points = ()
    g: Points = ()
    b: Points = ()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.master:
            x = monotone_curve(self.master, x)
        out = x.copy()
        for i, pts in enumerate((self.r, self.g, self.b)):
            if pts:
                out[..., i] = monotone_curve(pts, x[..., i])
        return out


@dataclass(frozen=True)
class Fade:
    """Output levels: black → ``black``, white → ``white`` per channel (a matte, faded print)."""

    black: RGB = (0.0, 0.0, 0.0)
    white: RGB = (1.0, 1.0, 1.0)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        lo, hi = np.array(self.black, F32), np.array(self.white, F32)
        return lo + (hi - lo) * x


@dataclass(frozen=True)
class SplitTone:
    """Add a colour offset to shadows and another to highlights (Lightroom's split toning).

    Weights 6.75·L(1−L)² and 6.75·L²(1−L) peak at 1 at L = ⅓ and ⅔ and vanish at black and
    white, so pure black and white stay neutral.
    """

    shadows: RGB = (0.0, 0.0, 0.0)
    highlights: RGB = (0.0, 0.0, 0.0)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        lum = np.clip(_luma(x), 0, 1)[..., None]
        ws, wh = 6.75 * lum * (1 - lum) ** 2, 6.75 * lum * lum * (1 - lum)
        return x + ws * np.array(self.shadows, F32) + wh * np.array(self.highlights, F32)


@dataclass(frozen=True)
class Mono:
    """Black and white through a channel mix (a red filter darkens skies, as on film)."""

    weights: RGB = (0.299, 0.587, 0.114)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        w = np.array(self.weights, F32) / sum(self.weights)
        return np.repeat((x @ w)[..., None], 3, axis=-1)


@dataclass(frozen=True)
class GradientMap:
    """Replace colour by a gradient indexed by luma (toning a monochrome print), blended by amount."""

    stops: tuple[tuple[float, RGB], ...]
    amount: float = 1.0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        lum = np.clip(_luma(x), 0, 1)
        pos = [s[0] for s in self.stops]
        mapped = np.stack([np.interp(lum, pos, [s[1][i] for s in self.stops]) for i in range(3)], axis=-1)
        return (x + self.amount * (mapped - x)).astype(F32)


@dataclass(frozen=True)
class Recipe:
    """A named look: the catalogue description it must honour, and the ops that realise it."""

    name: str
    description: str
    ops: tuple[object, ...] = field(default=())

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = x.astype(F32)
        for op in self.ops:
            x = np.clip(op(x), 0.0, 1.0)  # type: ignore[operator]
        return x
