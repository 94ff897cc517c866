"""The spatial part of an edit: structure, sharpen and bloom, on uint8 RGB with OpenCV.

Radii scale with the image (darktable soften.c sets its radius as a share of the image size), so
a 512 px preview and a 4K frame look alike. Large blurs run at ¼ resolution and are scaled back
up (≈5 ms at 1080p instead of ≈116 ms, grading.md §2.2). Detail from sharpen and structure is
measured on luma and added to all three channels, which avoids colour fringes; both are measured
on the same input and added in one pass (one merge + add instead of two). Everything stays in
uint8/int16 OpenCV calls: float32 numpy passes over a 1080p frame cost ~2–3 ms each.
Zero amounts skip their step, so an edit without spatial parameters returns its input untouched.
"""

from __future__ import annotations

import cv2
import numpy as np

SHARPEN_AMOUNT = 1.5        # USM amount at +100 (grading.md §6)
SHARPEN_SIGMA_1080 = 1.0    # px at a 1080 px short side
STRUCTURE_AMOUNT = 1.0      # local-contrast gain at +100
STRUCTURE_SIGMA = 0.02      # × short side
BLOOM_SIGMA = 0.02          # × short side
BLOOM_THRESHOLD = (0.6, 0.95)  # luma smoothstep of the bright pass
BLOOM_STRENGTH = 1.0        # glow opacity at ±100
_DOWN = 4

# 4L(1−L) on 8-bit luma, scaled to 0..255: structure's midtone weight, so shadows/highlights
# are not pushed into clipping (grading.md §1.11).
_x = np.arange(256) / 255.0
_MIDTONE_WEIGHT = np.rint(255 * 4 * _x * (1 - _x)).astype(np.uint8)
_t = np.clip((_x - BLOOM_THRESHOLD[0]) / (BLOOM_THRESHOLD[1] - BLOOM_THRESHOLD[0]), 0, 1)
_SMOOTH_MASK = np.rint(255 * _t * _t * (3 - 2 * _t)).astype(np.uint8)  # bloom's bright pass


def _down(plane: np.ndarray) -> np.ndarray:
    h, w = plane.shape[:2]
    return cv2.resize(plane, (max(1, w // _DOWN), max(1, h // _DOWN)), interpolation=cv2.INTER_AREA)


def _up(plane: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return cv2.resize(plane, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def _detail(y: np.ndarray, sharpen: float, structure: float) -> np.ndarray:
    """int16 luma detail: unsharp mask (darktable sharpen.c) + midtone-weighted local contrast
    (Lightroom Clarity as a large-radius USM, grading.md §1.11). Negative amounts soften."""
    short = min(y.shape)
    detail = np.zeros(y.shape, np.int16)
    if sharpen:
        blur = cv2.GaussianBlur(y, (0, 0), max(0.5, SHARPEN_SIGMA_1080 * short / 1080))
        k = SHARPEN_AMOUNT * sharpen if sharpen > 0 else sharpen  # −100 lands exactly on the blur
        detail = cv2.addWeighted(y, k, blur, -k, 0, dtype=cv2.CV_16S)
    if structure:
        base = _up(cv2.GaussianBlur(_down(y), (0, 0), max(0.5, STRUCTURE_SIGMA * short / _DOWN)), y.shape)
        d = cv2.subtract(y, base, dtype=cv2.CV_16S)
        weight = cv2.LUT(y, _MIDTONE_WEIGHT)
        d = cv2.multiply(d, weight, scale=STRUCTURE_AMOUNT * structure / 255, dtype=cv2.CV_16S)
        detail = cv2.add(detail, d)
    return detail


def _bloom(img: np.ndarray, amount: float) -> np.ndarray:
    """Bright pass (smoothstep on luma), blur, screen (darktable bloom.c, GEGL bloom), all at ¼
    resolution except the final blend. Negative amounts remove glow: img × (1 − k·glow)."""
    small = _down(img)
    mask = cv2.LUT(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), _SMOOTH_MASK)
    bright = cv2.multiply(small, cv2.merge([mask, mask, mask]), scale=BLOOM_STRENGTH * abs(amount) / 255)
    sigma = max(0.5, BLOOM_SIGMA * min(img.shape[:2]) / _DOWN)
    glow = _up(cv2.GaussianBlur(bright, (0, 0), sigma), img.shape)
    if amount > 0:  # screen: a + g·(255 − a)/255
        return cv2.add(img, cv2.multiply(cv2.bitwise_not(img), glow, scale=1 / 255))
    return cv2.subtract(img, cv2.multiply(img, glow, scale=1 / 255))


def apply_spatial(img: np.ndarray, sharpen: float = 0.0, structure: float = 0.0, bloom: float = 0.0) -> np.ndarray:
    """Structure and sharpen (together, on luma), then bloom. Amounts in [-1, 1]; 0 = skipped."""
    out = img
    if sharpen or structure:
        detail = _detail(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), sharpen, structure)
        out = cv2.add(img, cv2.merge([detail, detail, detail]), dtype=cv2.CV_8U)
    if bloom:
        out = _bloom(out, bloom)
    return out
