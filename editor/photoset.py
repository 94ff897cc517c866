"""The fixed set of real photographs every rendered comparison uses, small and all the same size.

Eight photographs from scikit-image's wheel (no download): portrait, still life, animal, outdoor
scene, night sky, microscopy, fundus, street (the left view of its stereo pair). Each is
centre-cropped to 4:3 and area-resized, so a stack of them renders as one array and every
statistic averages the same number of pixels per photo.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

PHOTO_SET: tuple[str, ...] = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
                              "immunohistochemistry", "retina", "stereo_motorcycle")
DEFAULT_WIDTH = 64  # 64×48: enough pixels for stable means, small enough for 1,000 edits a minute


def _load(name: str) -> np.ndarray:
    import skimage.data

    img = getattr(skimage.data, name)()
    if name == "stereo_motorcycle":
        img = img[0]
    return np.ascontiguousarray(np.asarray(img)[..., :3])


def _crop_4_3(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    if w * 3 > h * 4:
        cw = h * 4 // 3
        x0 = (w - cw) // 2
        return img[:, x0:x0 + cw]
    ch = w * 3 // 4
    y0 = (h - ch) // 2
    return img[y0:y0 + ch]


@lru_cache(maxsize=4)
def photo_stack(width: int = DEFAULT_WIDTH) -> np.ndarray:
    """uint8 array (8, H, W, 3) of the photo set at ``width`` × 3/4 ``width``; read-only."""
    import cv2

    height = width * 3 // 4
    photos = [cv2.resize(_crop_4_3(_load(n)), (width, height), interpolation=cv2.INTER_AREA) for n in PHOTO_SET]
    stack = np.ascontiguousarray(np.stack(photos))
    stack.setflags(write=False)
    return stack
