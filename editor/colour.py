"""Colour-space conversions used by the pointwise chain, on float32 arrays of shape (..., 3).

Sources: sRGB transfer function and D65 matrix from IEC 61966-2-1; Oklab from Björn Ottosson,
"A perceptual color space for image processing" (2020, bottosson.github.io/posts/oklab); the
Bradford cone matrix and the von Kries construction from colour-science
(``matrix_chromatic_adaptation_VonKries``); the CIE daylight locus from CIE 15:2004 §3.1
(colour-science ``CCT_to_xy_CIE_D``). All functions are pure and vectorised.
"""

from __future__ import annotations

import numpy as np

F32 = np.float32

# Rec.709 / sRGB luminance weights on *linear* values (IEC 61966-2-1).
LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=F32)

_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614],
                      [-0.7502, 1.7135, 0.0367],
                      [0.0389, -0.0685, 1.0296]])

_OK_M1 = np.array([[0.4122214708, 0.5363325363, 0.0514459929],
                   [0.2119034982, 0.6806995451, 0.1073969566],
                   [0.0883024619, 0.2817188376, 0.6299787005]], dtype=F32)
_OK_M2 = np.array([[0.2104542553, 0.7936177850, -0.0040720468],
                   [1.9779984951, -2.4285922050, 0.4505937099],
                   [0.0259040371, 0.7827717662, -0.8086757660]], dtype=F32)
_OK_M2_INV = np.linalg.inv(_OK_M2.astype(np.float64)).astype(F32)
_OK_M1_INV = np.linalg.inv(_OK_M1.astype(np.float64)).astype(F32)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 decode; negative inputs are mirrored so the function stays odd and finite."""
    a = np.abs(x)
    lin = np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4)
    return (np.sign(x) * lin).astype(F32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 encode (the inverse of ``srgb_to_linear``), odd-extended like it."""
    a = np.abs(x)
    enc = np.where(a <= 0.0031308, a * 12.92, 1.055 * np.power(a, 1 / 2.4) - 0.055)
    return (np.sign(x) * enc).astype(F32)


def luminance(lin: np.ndarray) -> np.ndarray:
    """Relative luminance Y of linear sRGB."""
    return (lin @ LUMA).astype(F32)


def linear_to_oklab(lin: np.ndarray) -> np.ndarray:
    lms = np.cbrt(lin @ _OK_M1.T)
    return (lms @ _OK_M2.T).astype(F32)


def oklab_to_linear(lab: np.ndarray) -> np.ndarray:
    lms = (lab @ _OK_M2_INV.T) ** 3
    return (lms @ _OK_M1_INV.T).astype(F32)


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def daylight_xy(cct: float) -> tuple[float, float]:
    """Chromaticity of CIE daylight at ``cct`` kelvin (valid 4000–25000 K; CIE 15:2004 eq. 3.3)."""
    t = float(np.clip(cct, 4000.0, 25000.0))
    if t <= 7000.0:
        x = -4.6070e9 / t**3 + 2.9678e6 / t**2 + 0.09911e3 / t + 0.244063
    else:
        x = -2.0064e9 / t**3 + 1.9018e6 / t**2 + 0.24748e3 / t + 0.237040
    return x, -3.0 * x * x + 2.87 * x - 0.275


def _xy_to_uv(x: float, y: float) -> np.ndarray:
    d = -2.0 * x + 12.0 * y + 3.0
    return np.array([4.0 * x / d, 6.0 * y / d])  # CIE 1960 UCS, where Duv is defined


def _uv_to_xy(uv: np.ndarray) -> tuple[float, float]:
    u, v = uv
    d = 2.0 * u - 8.0 * v + 4.0
    return 3.0 * u / d, 2.0 * v / d


def _xyz_white(x: float, y: float) -> np.ndarray:
    return np.array([x / y, 1.0, (1.0 - x - y) / y])  # Y = 1, so adaptation keeps white's luminance


def white_balance_matrix(cct: float, duv: float, source_cct: float = 6504.0) -> np.ndarray:
    """3×3 matrix on linear sRGB that re-lights a D65 scene as ``cct``/``duv`` (Bradford von Kries).

    White (1, 1, 1) maps to the target white with Y = 1, so white balance never changes exposure.
    ``duv`` > 0 moves the white off the daylight locus towards green, < 0 towards magenta.
    """
    src = _xyz_white(*daylight_xy(source_cct))
    uv = _xy_to_uv(*daylight_xy(cct))
    if duv:
        # The locus normal in uv, oriented towards +v (green), from a central difference.
        tangent = _xy_to_uv(*daylight_xy(cct + 50.0)) - _xy_to_uv(*daylight_xy(cct - 50.0))
        normal = np.array([-tangent[1], tangent[0]])
        normal = normal / np.linalg.norm(normal) * (1.0 if normal[1] > 0 else -1.0)
        uv = uv + duv * normal
    dst = _xyz_white(*_uv_to_xy(uv))
    gain = (_BRADFORD @ dst) / (_BRADFORD @ src)
    cat = np.linalg.inv(_BRADFORD) @ np.diag(gain) @ _BRADFORD
    return (_XYZ_TO_RGB @ cat @ _RGB_TO_XYZ).astype(F32)


def oklab_hue_deg(rgb_encoded: tuple[float, float, float]) -> float:
    """Oklab hue angle (degrees, 0..360) of an encoded sRGB colour; used to place range nodes."""
    lab = linear_to_oklab(srgb_to_linear(np.array(rgb_encoded, dtype=F32)))
    return float(np.degrees(np.arctan2(lab[2], lab[1])) % 360.0)
