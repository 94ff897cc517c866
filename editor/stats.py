"""Image statistics: the one definition of "the photo got brighter / warmer / more saturated".

Used by the rendered-look agreement of the trainer (does a predicted edit move a photo the way the
reference edit does?) and by the real-request benchmark (does it move the photo the way the
request asks?). Every statistic takes a uint8 RGB image (or a stack of them, shape (..., H, W, 3))
and works on encoded RGB scaled to 0..1, so a value of 0.02 is 5.1 levels out of 255:

==============  ===================================================================================
``luma``        mean Rec.709 luma, 0.2126 R + 0.7152 G + 0.0722 B of the encoded values
``chroma``      mean of max(R, G, B) − min(R, G, B) (colourfulness without a colour space)
``warmth``      mean R − B
``contrast``    standard deviation of the luma above
``green``       mean G − (R + B) / 2 (the green/magenta tint axis)
``sat_<range>`` Oklab chroma averaged over the pixels of one colour range (red … magenta), each
                pixel weighted by its membership of that range in the *original* photo, with the
                renderer's own range weights (``editor.pointwise``), so a hue shift does not move
                pixels between ranges
==============  ===================================================================================

``NOTICEABLE`` is the change below which a statistic is said not to have moved: the absolute
thresholds of the real-request set for luma, warmth and contrast; chroma is judged on its
*relative* change (``RELATIVE``), as in that set.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from editor.colour import linear_to_oklab, srgb_to_linear
from editor.pointwise import _range_weights
from schemas.edit import COLOUR_RANGES

_LUMA = np.array([0.2126, 0.7152, 0.0722])


def _unit(img: np.ndarray) -> np.ndarray:
    return np.asarray(img, dtype=np.float64) / 255.0


def _luma_plane(x: np.ndarray) -> np.ndarray:
    return x @ _LUMA


def _mean(plane: np.ndarray) -> np.ndarray:
    """Mean over the two pixel axes; keeps any leading stack axes."""
    return plane.mean(axis=(-2, -1))


def luma(img: np.ndarray) -> np.ndarray:
    return _mean(_luma_plane(_unit(img)))


def chroma(img: np.ndarray) -> np.ndarray:
    x = _unit(img)
    return _mean(x.max(axis=-1) - x.min(axis=-1))


def warmth(img: np.ndarray) -> np.ndarray:
    x = _unit(img)
    return _mean(x[..., 0] - x[..., 2])


def contrast(img: np.ndarray) -> np.ndarray:
    return _luma_plane(_unit(img)).std(axis=(-2, -1))


def green(img: np.ndarray) -> np.ndarray:
    x = _unit(img)
    return _mean(x[..., 1] - (x[..., 0] + x[..., 2]) / 2)


GLOBAL_STATS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "luma": luma, "chroma": chroma, "warmth": warmth, "contrast": contrast, "green": green,
}
RANGE_STATS: tuple[str, ...] = tuple(f"sat_{r}" for r in COLOUR_RANGES)
STATISTICS: tuple[str, ...] = (*GLOBAL_STATS, *RANGE_STATS)

NOTICEABLE: dict[str, float] = {"luma": 0.02, "chroma": 0.05, "warmth": 0.02, "contrast": 0.01, "green": 0.02,
                                **{s: 0.01 for s in RANGE_STATS}}
RELATIVE: frozenset[str] = frozenset({"chroma"})
# A range holding less than this share of a photo's pixels says nothing about that range.
MIN_RANGE_SHARE = 0.02


def oklab_chroma(img: np.ndarray) -> np.ndarray:
    lab = linear_to_oklab(srgb_to_linear(_unit(img).astype(np.float32)))
    return np.hypot(lab[..., 1], lab[..., 2]).astype(np.float64)


def range_weights(img: np.ndarray) -> np.ndarray:
    """Per-pixel membership of each colour range, shape (8, ..., H, W), from Oklab hue.

    Near-grey pixels have no meaningful hue, so their membership fades to 0 with chroma.
    """
    lab = linear_to_oklab(srgb_to_linear(_unit(img).astype(np.float32)))
    hue = np.degrees(np.arctan2(lab[..., 2], lab[..., 1])) % 360.0
    left, right, w_left = _range_weights(hue)
    greyness = np.clip(np.hypot(lab[..., 1], lab[..., 2]) / 0.03, 0.0, 1.0)
    out = np.zeros((len(COLOUR_RANGES), *hue.shape))
    for k in range(len(COLOUR_RANGES)):
        out[k] = (np.where(left == k, w_left, 0.0) + np.where(right == k, 1.0 - w_left, 0.0)) * greyness
    return out


def range_saturation(img: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean Oklab chroma per range, shape (8, ...); NaN where a range has no pixels."""
    c = oklab_chroma(img)
    total = weights.sum(axis=(-2, -1))
    share = total / (weights.shape[-1] * weights.shape[-2])
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (weights * c).sum(axis=(-2, -1)) / total
    return np.where(share >= MIN_RANGE_SHARE, mean, np.nan)


def measure(img: np.ndarray, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every statistic of ``img``; the per-range ones only when range ``weights`` are given."""
    out = {name: fn(img) for name, fn in GLOBAL_STATS.items()}
    if weights is not None:
        sat = range_saturation(img, weights)
        out.update({name: sat[k] for k, name in enumerate(RANGE_STATS)})
    return out


def change(before: float | np.ndarray, after: float | np.ndarray, statistic: str) -> np.ndarray:
    """How far ``statistic`` moved: after − before, relative to before for ``RELATIVE`` ones."""
    b, a = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    if statistic in RELATIVE:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(b > 0, (a - b) / np.where(b > 0, b, 1.0), 0.0)
    return a - b
