"""The editor: renders edits (adjust / selective_adjust / filter) on images and videos.

Public API::

    from editor import Renderer, render, read_image, write_image
    out = render(rgb_uint8, {"adjust": {"exposure": 20}, "filter": {"name": "film_Portra", "intensity": 60}})

Pointwise parameters are folded into one 3D LUT (``editor.lut``), spatial ones run as OpenCV
filters (``editor.spatial``); filter looks are baked from recipes (``editor.looks``) to .cube files.
"""

from editor.images import Still, read_image, write_image
from editor.render import Renderer, RenderOptions, reference_render, render

__all__ = ["RenderOptions", "Renderer", "Still", "read_image", "reference_render", "render", "write_image"]
