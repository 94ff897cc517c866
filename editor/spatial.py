"""The spatial part of an edit: structure, sharpen and bloom, on uint8 RGB with OpenCV.

Radii scale with the image (darktable soften.c sets its radius as a share of the image size), so
a 512 px preview and a 4K frame look alike. Large blurs run at ¼ resolution and are scaled back
up (≈5 ms at 1080p instead of ≈116 ms, grading.md §2.2). Detail from sharpen and structure is
measured on luma and added to all three channels, which avoids colour fringes; both are measured
on the same input and added in one pass. Everything stays in uint8/int16 OpenCV calls: float32
numpy passes over a 1080p frame cost ~2–3 ms each.
Zero amounts skip their step, so an edit without spatial parameters returns its input untouched.

Speed (issue 6; measured on the 2-core VM, 1080p):

- **Fresh memory is the dominant cost, not the arithmetic.** A new full-resolution array that
  glibc maps and later hands back to the kernel costs one page fault per 4 KiB on first touch:
  ≈5,000–7,000 faults, ≈12–20 ms per frame, more than the filters themselves. So every
  intermediate lives in a per-thread scratch buffer (``_scratch``), reused from frame to frame
  and written through OpenCV's ``dst=``; only the returned frame is new. Scratch holds
  intermediates only, never a result: each call recomputes everything from its input.
- **OpenCV runs its per-element arithmetic on one core** (only the blurs and resizes use its
  thread pool), ≈6 of the ≈17 ms of CPU. Those passes are pointwise, so they run on row strips
  in parallel (``threads``), with no halo and bit for bit the same result; the blurs and resizes
  run on the whole frame, where OpenCV threads them itself.
- The int16 detail is added as two saturated uint8 planes (``img + sat(d) − sat(−d)``, exact
  because one of the two is 0 at every pixel) instead of one slow mixed uint8+int16 add.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from editor.lut import run_rows

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

_local = threading.local()


def _scratch(name: str, shape: tuple[int, ...], dtype: type = np.uint8) -> np.ndarray:
    """A reusable buffer of the calling thread (contents undefined): intermediates only, never
    returned. Strip workers get row views of the caller's buffers, never their own."""
    bufs: dict[str, np.ndarray] | None = getattr(_local, "bufs", None)
    if bufs is None:
        bufs = _local.bufs = {}
    buf = bufs.get(name)
    if buf is None or buf.shape != shape or buf.dtype != dtype:
        buf = bufs[name] = np.empty(shape, dtype)
    return buf


def _down(plane: np.ndarray, name: str) -> np.ndarray:
    h, w = max(1, plane.shape[0] // _DOWN), max(1, plane.shape[1] // _DOWN)
    return cv2.resize(plane, (w, h), dst=_scratch(name, (h, w, *plane.shape[2:])), interpolation=cv2.INTER_AREA)


def _up(plane: np.ndarray, shape: tuple[int, ...], dst: np.ndarray) -> np.ndarray:
    return cv2.resize(plane, (shape[1], shape[0]), dst=dst, interpolation=cv2.INTER_LINEAR)


def _add_detail(img: np.ndarray, detail: np.ndarray, out: np.ndarray, clipped: np.ndarray,
                up: np.ndarray, down: np.ndarray, plane3: np.ndarray) -> None:
    """out = saturate(img + detail) per channel, with detail int16 H×W (one value for R, G, B).

    Split into uint8 planes up = sat(detail) and down = sat(−detail); at every pixel one of them
    is 0, so saturating (img + up) − down equals the saturated int sum bit for bit. ``clipped``,
    ``up``, ``down``, ``plane3``: scratch of detail's shape (int16, uint8, uint8) and img's."""
    cv2.convertScaleAbs(cv2.max(detail, 0, dst=clipped), dst=up)
    cv2.convertScaleAbs(cv2.min(detail, 0, dst=clipped), dst=down)
    cv2.add(img, cv2.cvtColor(up, cv2.COLOR_GRAY2RGB, dst=plane3), dst=out)
    cv2.subtract(out, cv2.cvtColor(down, cv2.COLOR_GRAY2RGB, dst=plane3), dst=out)


def _sharpen_structure(img: np.ndarray, out: np.ndarray, sharpen: float, structure: float, threads: int) -> None:
    """out = img + luma detail: unsharp mask (darktable sharpen.c) + midtone-weighted local
    contrast (Lightroom Clarity as a large-radius USM, grading.md §1.11). Negative amounts soften.
    ``out`` may be ``img``."""
    shape = img.shape[:2]
    short = min(shape)
    y = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY, dst=_scratch("y", shape))
    blur = base = None
    if sharpen:
        blur = cv2.GaussianBlur(y, (0, 0), max(0.5, SHARPEN_SIGMA_1080 * short / 1080), dst=_scratch("blur", shape))
    if structure:
        small = _down(y, "small_y")
        small = cv2.GaussianBlur(small, (0, 0), max(0.5, STRUCTURE_SIGMA * short / _DOWN), dst=small)
        base = _up(small, shape, _scratch("base", shape))
    k = SHARPEN_AMOUNT * sharpen if sharpen > 0 else sharpen  # −100 lands exactly on the blur
    scale = STRUCTURE_AMOUNT * structure / 255
    detail, d = _scratch("detail", shape, np.int16), _scratch("s16", shape, np.int16)
    weight, plane3 = _scratch("weight", shape), _scratch("rgb", img.shape)

    def rows(a: int, b: int) -> None:  # pointwise from here on: any row split gives the same bits
        if blur is not None:
            cv2.addWeighted(y[a:b], k, blur[a:b], -k, 0, dst=detail[a:b], dtype=cv2.CV_16S)
        if base is not None:
            cv2.subtract(y[a:b], base[a:b], dst=d[a:b], dtype=cv2.CV_16S)
            cv2.LUT(y[a:b], _MIDTONE_WEIGHT, dst=weight[a:b])
            if blur is not None:
                cv2.multiply(d[a:b], weight[a:b], dst=d[a:b], scale=scale, dtype=cv2.CV_16S)
                cv2.add(detail[a:b], d[a:b], dst=detail[a:b])
            else:
                cv2.multiply(d[a:b], weight[a:b], dst=detail[a:b], scale=scale, dtype=cv2.CV_16S)
        # y and the blurs of these rows are no longer needed: reuse them as the uint8 planes.
        up = blur[a:b] if blur is not None else base[a:b]
        _add_detail(img[a:b], detail[a:b], out[a:b], d[a:b], up, weight[a:b], plane3[a:b])

    run_rows(rows, shape[0], threads)


def _bloom(img: np.ndarray, out: np.ndarray, amount: float, threads: int) -> None:
    """Bright pass (smoothstep on luma), blur, screen (darktable bloom.c, GEGL bloom), all at ¼
    resolution except the final blend. Negative amounts remove glow: img × (1 − k·glow).
    ``out`` may be ``img``."""
    small = _down(img, "small_rgb")
    mask = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY, dst=_scratch("small_y", small.shape[:2]))
    mask = cv2.LUT(mask, _SMOOTH_MASK, dst=mask)
    mask3 = cv2.cvtColor(mask, cv2.COLOR_GRAY2RGB, dst=_scratch("small_mask", small.shape))
    bright = cv2.multiply(small, mask3, dst=small, scale=BLOOM_STRENGTH * abs(amount) / 255)
    sigma = max(0.5, BLOOM_SIGMA * min(img.shape[:2]) / _DOWN)
    glow = _up(cv2.GaussianBlur(bright, (0, 0), sigma, dst=mask3), img.shape, _scratch("rgb", img.shape))

    def rows(a: int, b: int) -> None:
        src, dst, g = img[a:b], out[a:b], glow[a:b]
        if amount > 0:
            # screen a + g·(255 − a)/255, written as 255 − (255 − a)(255 − g)/255 so that it needs
            # no extra buffer: the same value bit for bit, since g·(255 − a)/255 is never a
            # half-integer (255 is odd), so both round alike.
            cv2.bitwise_not(src, dst=dst)
            cv2.multiply(dst, cv2.bitwise_not(g, dst=g), dst=dst, scale=1 / 255)
            cv2.bitwise_not(dst, dst=dst)
        else:
            cv2.subtract(src, cv2.multiply(src, g, dst=g, scale=1 / 255), dst=dst)

    run_rows(rows, img.shape[0], threads)


def apply_spatial(img: np.ndarray, sharpen: float = 0.0, structure: float = 0.0, bloom: float = 0.0,
                  out: np.ndarray | None = None, threads: int = 1) -> np.ndarray:
    """Structure and sharpen (together, on luma), then bloom. Amounts in [-1, 1]; 0 = skipped.

    Writes into ``out`` (a new array when None; it may be ``img`` itself, in place) and returns
    it; ``img`` is returned unchanged when every amount is 0. ``threads`` > 1 runs the pointwise
    passes on that many row strips in parallel: the output is the same bit for bit."""
    if not (sharpen or structure or bloom):
        return img
    if out is None:
        out = np.empty_like(img)
    src = img
    if sharpen or structure:
        _sharpen_structure(img, out, sharpen, structure, threads)
        src = out
    if bloom:
        _bloom(src, out, bloom, threads)
    return out
