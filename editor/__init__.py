"""The editor: renders edits (adjust / selective_adjust / filter) on images and videos.

Public API::

    from editor import Renderer, render_image, read_image, write_image
    out = render_image(rgb_uint8, {"adjust": {"exposure": 20}, "filter": {"name": "film_Portra", "intensity": 60}})

Pointwise parameters are folded into one 3D LUT (``editor.lut``), spatial ones run as OpenCV
filters (``editor.spatial``); filter looks are baked from recipes (``editor.looks``) to .cube files.
Names are imported lazily (PEP 562) so that ``toneflow --help``, which imports ``editor.cli``,
does not pay for numpy, OpenCV and OCIO.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {"Still": "editor.images", "read_image": "editor.images", "write_image": "editor.images",
            "RenderOptions": "editor.render", "Renderer": "editor.render", "reference_render": "editor.render",
            "render_image": "editor.render"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    msg = f"module 'editor' has no attribute {name!r}"
    raise AttributeError(msg)
