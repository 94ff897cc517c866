"""Reading and writing stills: JPEG, PNG, WebP and TIFF as 8-bit RGB.

Reading applies the EXIF orientation and keeps what rendering must not lose: the alpha channel
(re-attached untouched on save, where the format has one) and the ICC profile and EXIF block
(written back, so a graded photo keeps its colour space tag and metadata).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from editor.exceptions import MediaDecodeError, MediaNotFound, UnsupportedFormat

IMAGE_EXTS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}
VIDEO_EXTS = (".mp4", ".mov")
JPEG_QUALITY = 95  # high enough that re-encoding adds no visible blocking to a graded photo


def media_kind(path: Path) -> str:
    """'image' or 'video' from the extension; UnsupportedFormat names what is supported."""
    ext = path.suffix.lower()
    if ext in IMAGE_EXTS:
        return "image"
    if ext in VIDEO_EXTS:
        return "video"
    msg = (f"unsupported format {ext or '(no extension)'!r} for {path}; images: "
           f"{', '.join(sorted(IMAGE_EXTS))}; videos: {', '.join(VIDEO_EXTS)}")
    raise UnsupportedFormat(msg)


@dataclass
class Still:
    """An 8-bit RGB image plus what saving needs to give back."""

    rgb: np.ndarray
    alpha: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)


def read_image(path: Path) -> Still:
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    media_kind(path)
    if not path.is_file():
        msg = f"input image {path} does not exist (check the path)"
        raise MediaNotFound(msg)
    try:
        with Image.open(path) as im:
            im.load()
            info = {k: im.info[k] for k in ("icc_profile", "exif") if im.info.get(k)}
            im = ImageOps.exif_transpose(im)
            alpha = None
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                alpha = np.asarray(im)[..., 3].copy()
            rgb = np.ascontiguousarray(np.asarray(im.convert("RGB")))
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        msg = f"cannot decode {path} as an image ({err}); is it a complete JPEG/PNG/WebP/TIFF file?"
        raise MediaDecodeError(msg) from None
    if "exif" in info:
        # exif_transpose already rotated the pixels; reset the tag so viewers do not rotate again.
        exif = Image.Exif()
        exif.load(info["exif"])
        exif.pop(0x0112, None)
        info["exif"] = exif.tobytes()
    return Still(rgb, alpha, info)


def write_image(path: Path, still: Still) -> None:
    """Save atomically (temp file then rename) in the format given by the extension."""
    import os

    from PIL import Image

    path = Path(path)
    if media_kind(path) != "image":
        msg = f"{path} is a video name, but the input is an image; use .jpg/.png/.webp/.tif"
        raise UnsupportedFormat(msg)
    fmt = IMAGE_EXTS[path.suffix.lower()]
    im = Image.fromarray(still.rgb)
    if still.alpha is not None and fmt != "JPEG":
        im.putalpha(Image.fromarray(still.alpha))
    kwargs: dict[str, Any] = dict(still.info)
    if fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = JPEG_QUALITY
    if fmt == "TIFF":
        kwargs["compression"] = "tiff_deflate"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        im.save(tmp, format=fmt, **kwargs)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        msg = f"cannot write {path}: {err}"
        raise MediaDecodeError(msg) from None
