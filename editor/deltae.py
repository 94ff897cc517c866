"""CIELAB and the CIEDE2000 colour difference, vectorised in float64 numpy.

Conversion: encoded sRGB (IEC 61966-2-1 transfer) → XYZ with the sRGB/D65 matrix → CIELAB against
the D65 2° white (0.95047, 1, 1.08883), i.e. the same constants scikit-image uses, so a ΔE here can
be checked against ``skimage.color.deltaE_ciede2000`` (tests/test_honest_eval.py does). ΔE follows
Sharma, Wu & Dalal, "The CIEDE2000 color-difference formula: implementation notes" (2005), with
kL = kC = kH = 1. uint8 input is decoded through a 256-entry table, which makes the conversion the
cheap part of comparing two renders.
"""

from __future__ import annotations

import numpy as np

_XYZ_FROM_RGB = np.array([[0.412453, 0.357580, 0.180423],
                          [0.212671, 0.715160, 0.072169],
                          [0.019334, 0.119193, 0.950227]])
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])


def _decode(v: np.ndarray) -> np.ndarray:
    return np.where(v > 0.04045, ((v + 0.055) / 1.055) ** 2.4, v / 12.92)


_DECODE_U8 = _decode(np.arange(256, dtype=np.float64) / 255.0)


def srgb_u8_to_lab(img: np.ndarray) -> np.ndarray:
    """CIELAB (L in 0..100) of a uint8 sRGB array of shape (..., 3)."""
    lin = _DECODE_U8[img] if img.dtype == np.uint8 else _decode(np.asarray(img, dtype=np.float64))
    t = lin @ (_XYZ_FROM_RGB / _WHITE_D65[:, None]).T
    f = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16.0 / 116.0)
    lab = np.empty_like(f)
    lab[..., 0] = 116.0 * f[..., 1] - 16.0
    lab[..., 1] = 500.0 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200.0 * (f[..., 1] - f[..., 2])
    return lab


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """Per-pixel CIEDE2000 ΔE between two CIELAB arrays of shape (..., 3)."""
    l1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    l2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]
    c_bar = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    c7 = c_bar ** 7
    g = 0.5 * (1 - np.sqrt(c7 / (c7 + 25.0 ** 7)))
    a1p, a2p = a1 * (1 + g), a2 * (1 + g)
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.arctan2(b1, a1p) % (2 * np.pi)
    h2p = np.arctan2(b2, a2p) % (2 * np.pi)
    dl = l2 - l1
    dc = c2p - c1p
    dh = h2p - h1p
    dh = np.where(dh > np.pi, dh - 2 * np.pi, np.where(dh < -np.pi, dh + 2 * np.pi, dh))
    zero = (c1p * c2p) == 0
    dh = np.where(zero, 0.0, dh)
    dhh = 2 * np.sqrt(c1p * c2p) * np.sin(dh / 2)
    l_bar = (l1 + l2) / 2
    cp_bar = (c1p + c2p) / 2
    hsum = h1p + h2p
    h_bar = np.where(np.abs(h1p - h2p) > np.pi, np.where(hsum < 2 * np.pi, hsum / 2 + np.pi, hsum / 2 - np.pi),
                     hsum / 2)
    h_bar = np.where(zero, hsum, h_bar)
    t = (1 - 0.17 * np.cos(h_bar - np.radians(30)) + 0.24 * np.cos(2 * h_bar)
         + 0.32 * np.cos(3 * h_bar + np.radians(6)) - 0.20 * np.cos(4 * h_bar - np.radians(63)))
    d_theta = np.radians(30) * np.exp(-(((np.degrees(h_bar) - 275) / 25) ** 2))
    cp7 = cp_bar ** 7
    r_c = 2 * np.sqrt(cp7 / (cp7 + 25.0 ** 7))
    l50 = (l_bar - 50) ** 2
    s_l = 1 + 0.015 * l50 / np.sqrt(20 + l50)
    s_c = 1 + 0.045 * cp_bar
    s_h = 1 + 0.015 * cp_bar * t
    r_t = -np.sin(2 * d_theta) * r_c
    tl, tc, th = dl / s_l, dc / s_c, dhh / s_h
    return np.sqrt(np.maximum(tl * tl + tc * tc + th * th + r_t * tc * th, 0.0))


def mean_delta_e(img1: np.ndarray, img2: np.ndarray) -> float:
    """Mean CIEDE2000 ΔE over the pixels of two uint8 sRGB images of the same shape."""
    return float(ciede2000(srgb_u8_to_lab(img1), srgb_u8_to_lab(img2)).mean())
