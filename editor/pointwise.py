"""The pointwise part of an edit: every adjust parameter except bloom/sharpen/structure, and all
of selective adjust, as one float32 function ``rgb -> rgb`` on encoded sRGB in [0, 1].

It runs on a LUT grid (33³ points) when an edit is rendered, and on whole frames only as the
slow reference in tests and benchmarks. Order follows darktable/Lightroom (grading.md §1.13):
decode → white balance → exposure → tone (on luminance) → linear offset → clip → Oklab colour
(selective, hue, saturation, vibrance) → gamut map → encode.

Guarantees: every parameter at 0 skips its step (an all-zero edit is the identity up to float
round-off; the renderer skips the LUT entirely then); every tone curve is monotone with fixed end
points at ±100, so no inversions or wrap-around; the output is finite and inside [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from editor.colour import (
    F32,
    linear_to_oklab,
    linear_to_srgb,
    luminance,
    oklab_hue_deg,
    oklab_to_linear,
    smoothstep,
    srgb_to_linear,
    white_balance_matrix,
)
from schemas.edit import COLOUR_RANGES

POINTWISE_ADJUST = ("exposure", "contrast", "brightness", "highlights", "shadows", "saturation",
                    "vibrance", "temperature", "tint", "hue", "linearOffset")
SPATIAL_ADJUST = ("structure", "sharpen", "bloom")

# Scales at ±100 (grading.md §6; our choices, not the paper's).
EXPOSURE_EV = 2.0          # ±2 stops
SHOULDER_KNEE = 0.6        # linear value where positive exposure starts rolling off
D65_MIRED = 1e6 / 6504.0
TEMPERATURE_MIRED = 60.0   # +100 → 4680 K light, −100 → 10700 K
TINT_DUV = 0.02            # + = magenta (below the locus)
HUE_DEG = 30.0
OFFSET_LINEAR = 0.03       # +100 lifts black to ≈ 48/255
SELECTIVE_HUE_DEG = 30.0
SELECTIVE_LUM = 0.3        # Oklab L × (1 ± 0.3)
VIBRANCE_CMAX = 0.25       # Oklab chroma treated as "fully saturated"
SKIN_HUE_DEG = 52.0        # measured Oklab hue of typical skin tones (≈ 50–54°)
MID_GREY = float(linear_to_srgb(np.array(0.18, dtype=np.float32)))

# Node hues of the 8 colour ranges: the Oklab hue of each sRGB primary/secondary (and orange,
# purple between them), in ascending order, measured rather than typed in.
_NODE_COLOURS = {"red": (1, 0, 0), "orange": (1, .5, 0), "yellow": (1, 1, 0), "green": (0, 1, 0),
                 "cyan": (0, 1, 1), "blue": (0, 0, 1), "purple": (.5, 0, 1), "magenta": (1, 0, 1)}
RANGE_HUES = np.array([oklab_hue_deg(_NODE_COLOURS[c]) for c in COLOUR_RANGES])
assert np.all(np.diff(RANGE_HUES) > 0), "range nodes must ascend in hue"


def _exposure(lin: np.ndarray, ev: float) -> np.ndarray:
    """×2^EV in linear light (darktable basicadj / GEGL exposure); + adds a C¹ shoulder above the
    knee that maps the old white exactly to 1, so brightening never hard-clips highlights."""
    gain = 2.0 ** ev
    v = lin * gain
    if gain <= 1.0:
        return v
    k = SHOULDER_KNEE
    big_t = (gain - k) / (1 - k)
    a = 1.0  # solve a = 1 − exp(−a·T): unit slope at the knee and F(T) = 1; Newton from the right
    for _ in range(30):
        a -= (a - 1 + math.exp(-a * big_t)) / (1 - big_t * math.exp(-a * big_t))
    t = np.maximum(v - k, 0) / (1 - k)
    rolled = k + (1 - k) * (1 - np.exp(-a * t)) / a
    return np.where(v > k, rolled, v).astype(F32)


def tone_curve(luma: np.ndarray, adjust: Mapping[str, int]) -> np.ndarray:
    """Shadows, highlights, contrast and brightness on encoded luminance in [0, 1].

    Each is a polynomial bump with fixed end points whose coefficient keeps it monotone at ±100.
    """
    x = luma
    s = adjust.get("shadows", 0) / 100
    if s:  # bump peaks at L = 1/3; slope 1 + s·c·(1−L)(1−3L) ≥ 0 needs c ≤ 3 (+) and c ≤ 1 (−)
        x = x + s * (1.5 if s > 0 else 0.95) * x * (1 - x) ** 2
    h = adjust.get("highlights", 0) / 100
    if h:  # mirror image, peaks at L = 2/3
        x = x + h * (0.95 if h > 0 else 1.5) * x * x * (1 - x)
    c = adjust.get("contrast", 0) / 100
    if c:
        # S-curve u + c·u(1−u)(2u−1) (slope at the pivot 1 + c/2, at the ends 1 − c), pivoting at
        # encoded mid grey: a power warp moves 0.18 linear to u = 0.5 and back (darktable pivots
        # its contrast at mid grey too).
        warp = math.log(0.5) / math.log(MID_GREY)
        u = np.power(np.clip(x, 0, 1), warp)
        u = u + c * u * (1 - u) * (2 * u - 1)
        x = np.power(np.clip(u, 0, 1), 1 / warp)
    b = adjust.get("brightness", 0) / 100
    if b:  # midtone lift, slope 1 ± 0.9 at the ends: darktable's brightness gamma without its
        # infinite slope at black, which would open 8-bit gaps in the shadows
        x = x + b * 0.9 * x * (1 - x)
    return x.astype(F32)


def _offset(lin: np.ndarray, amount: float) -> np.ndarray:
    """Lift (+): the ASC-CDL offset with white held at 1. Crush (−): the inverse with a soft floor."""
    o = OFFSET_LINEAR * amount
    if o > 0:
        return o + lin * (1 - o)
    v = (lin + o) / (1 + o)
    delta = 0.004  # softplus-like floor: no hard clip inside the LUT chain (grading.md §1.14)
    return 0.5 * (v + np.sqrt(v * v + delta * delta)) - 0.5 * delta


def _range_weights(hue_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raised-cosine interpolation between neighbouring range nodes: a partition of unity whose
    weight for a range is exactly 0 at and beyond its neighbours' centres (no leakage further)."""
    nodes = np.concatenate([RANGE_HUES, [RANGE_HUES[0] + 360.0]])
    h = np.where(hue_deg < nodes[0], hue_deg + 360.0, hue_deg)
    k = np.clip(np.searchsorted(nodes, h, side="right") - 1, 0, len(RANGE_HUES) - 1)
    t = (h - nodes[k]) / (nodes[k + 1] - nodes[k])
    w_left = 0.5 * (1 + np.cos(np.pi * t))
    return k, (k + 1) % len(RANGE_HUES), w_left


def _selective_table(selective: Mapping[str, Mapping[str, int]]) -> np.ndarray:
    table = np.zeros((len(COLOUR_RANGES), 3), dtype=F32)
    for i, colour in enumerate(COLOUR_RANGES):
        rng = selective.get(colour) or {}
        table[i] = [rng.get("hue", 0) / 100, rng.get("saturation", 0) / 100, rng.get("luminance", 0) / 100]
    return table


def _colour(lab: np.ndarray, adjust: Mapping[str, int], selective: Mapping[str, Mapping[str, int]]) -> np.ndarray:
    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    chroma = np.hypot(a, b)
    hue = np.arctan2(b, a)
    table = _selective_table(selective)
    if table.any():
        left, right, w = _range_weights(np.degrees(hue) % 360.0)
        gate = smoothstep(0.02, 0.08, chroma)  # near-greys have no reliable hue: leave them alone
        delta = (table[left] * w[..., None] + table[right] * (1 - w)[..., None]) * gate[..., None]
        hue = hue + np.radians(SELECTIVE_HUE_DEG) * delta[..., 0]
        chroma = chroma * np.maximum(0.0, 1 + delta[..., 1])
        L = L * (1 + SELECTIVE_LUM * delta[..., 2])
    if adjust.get("hue", 0):
        hue = hue + np.radians(HUE_DEG * adjust["hue"] / 100)
    if adjust.get("saturation", 0):  # GEGL/Lightroom: chroma × (1 + s); −100 is exactly grey
        chroma = chroma * (1 + adjust["saturation"] / 100)
    v = adjust.get("vibrance", 0) / 100
    if v:
        # FFmpeg vf_vibrance weighting on Oklab chroma: + boosts muted colours most, − mutes the
        # saturated ones most; + also spares skin (Lightroom's documented behaviour).
        sat = np.minimum(chroma / VIBRANCE_CMAX, 1.0)
        if v > 0:
            dh = (np.degrees(hue) - SKIN_HUE_DEG + 180.0) % 360.0 - 180.0
            skin = 1 - 0.6 * np.exp(-((dh / 20.0) ** 2))
            gain = 1 + v * (1 - sat) * skin
        else:
            gain = 1 + v * (0.5 + 0.5 * sat)
        chroma = chroma * np.maximum(gain, 0.0)
    return np.stack([L, chroma * np.cos(hue), chroma * np.sin(hue)], axis=-1).astype(F32)


def gamut_map(lab: np.ndarray, iterations: int = 12) -> np.ndarray:
    """Oklab → linear sRGB inside [0, 1]: L is clamped, out-of-gamut chroma is reduced by bisection
    at constant L and hue, so strong saturation keeps hue instead of clipping channel by channel."""
    lab = lab.copy()
    lab[..., 0] = np.clip(lab[..., 0], 0.0, 1.0)
    lin = oklab_to_linear(lab)
    bad = np.any((lin < -1e-5) | (lin > 1 + 1e-5), axis=-1)
    if bad.any():
        sub = lab[bad]
        lo, hi = np.zeros(len(sub), F32), np.ones(len(sub), F32)
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            trial = np.concatenate([sub[:, :1], sub[:, 1:] * mid[:, None]], axis=1)
            rgb = oklab_to_linear(trial)
            ok = np.all((rgb >= -1e-5) & (rgb <= 1 + 1e-5), axis=1)
            lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
        lin[bad] = oklab_to_linear(np.concatenate([sub[:, :1], sub[:, 1:] * lo[:, None]], axis=1))
    return np.clip(lin, 0.0, 1.0)


def has_pointwise(adjust: Mapping[str, int], selective: Mapping[str, Mapping[str, int]]) -> bool:
    return any(adjust.get(p, 0) for p in POINTWISE_ADJUST) or bool(_selective_table(selective).any())


def apply_pointwise(rgb: np.ndarray, adjust: Mapping[str, int],
                    selective: Mapping[str, Mapping[str, int]] | None = None) -> np.ndarray:
    """Apply the pointwise adjust parameters and selective adjust to encoded sRGB (..., 3) in [0, 1].

    ``adjust`` and ``selective`` are canonical-dict sections (missing keys = 0).
    """
    selective = selective or {}
    if not has_pointwise(adjust, selective):
        return rgb.astype(F32)
    lin = srgb_to_linear(rgb.astype(F32))
    temp, tint = adjust.get("temperature", 0), adjust.get("tint", 0)
    if temp or tint:
        cct = 1e6 / (D65_MIRED + TEMPERATURE_MIRED * temp / 100)
        lin = lin @ white_balance_matrix(cct, -TINT_DUV * tint / 100).T
    if adjust.get("exposure", 0):
        lin = _exposure(lin, EXPOSURE_EV * adjust["exposure"] / 100)
    if any(adjust.get(p, 0) for p in ("shadows", "highlights", "contrast", "brightness")):
        y = np.maximum(luminance(lin), 0.0)
        enc = linear_to_srgb(y)
        clipped = np.clip(enc, 0.0, 1.0)
        target = srgb_to_linear(enc + (tone_curve(clipped, adjust) - clipped))
        # Scale RGB by the luminance ratio (darktable's "preserve colors"): tone never shifts hue.
        lin = lin * (target / np.maximum(y, 1e-7))[..., None]
    if adjust.get("linearOffset", 0):
        lin = _offset(lin, adjust["linearOffset"] / 100)
    lin = np.clip(lin, 0.0, 1.0)
    if any(adjust.get(p, 0) for p in ("hue", "saturation", "vibrance")) or _selective_table(selective).any():
        lin = gamut_map(_colour(linear_to_oklab(lin), adjust, selective))
    return np.clip(linear_to_srgb(lin), 0.0, 1.0)
