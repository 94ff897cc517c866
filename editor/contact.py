"""Contact sheets: one image rendered under several edits, side by side, for reality checks.

``build_sheet`` lays tiles out in a grid with a label strip under each; ``write_html`` writes a
self-contained page (tiles embedded as JPEG data URIs) that also shows each tile's edit JSON, so
a reviewer can see both what the model said and what it looks like.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from editor.render import Renderer, RenderOptions
from schemas.edit import Edit

LABEL_HEIGHT = 40
GAP = 6
BACKGROUND = (24, 24, 24)


@dataclass(frozen=True)
class Tile:
    """One rendered cell: a title (the look, prompt or file), a subtitle (model), its edit."""

    title: str
    subtitle: str
    edit: Edit
    image: np.ndarray


def fit_width(rgb: np.ndarray, width: int) -> np.ndarray:
    """Downscale (area filter) to ``width`` pixels wide, keeping the aspect ratio."""
    import cv2

    h, w = rgb.shape[:2]
    if w <= width:
        return rgb
    return cv2.resize(rgb, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)


def render_tiles(rgb: np.ndarray, entries: list[tuple[str, str, Edit]], options: RenderOptions,
                 include_original: bool = True) -> list[Tile]:
    """Render ``(title, subtitle, edit)`` entries on ``rgb`` (already at tile size)."""
    tiles = [Tile("original", "", Edit(), rgb)] if include_original else []
    tiles += [Tile(title, subtitle, edit, Renderer(edit, options)(rgb)) for title, subtitle, edit in entries]
    return tiles


def _font(size: int):  # noqa: ANN202 - a PIL font object
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def _fit_text(draw, text: str, font, width: int) -> str:  # noqa: ANN001
    while text and draw.textlength(text, font=font) > width:
        text = text[:-2] + "…" if len(text) > 2 else ""
    return text


def build_sheet(tiles: list[Tile], columns: int):  # noqa: ANN201 - a PIL image
    """The grid as a PIL image: tiles left to right, top to bottom, each labelled underneath."""
    from PIL import Image, ImageDraw

    columns = max(1, min(columns, len(tiles)))
    rows = -(-len(tiles) // columns)
    tw = max(t.image.shape[1] for t in tiles)
    th = max(t.image.shape[0] for t in tiles)
    sheet = Image.new("RGB", (columns * (tw + GAP) + GAP, rows * (th + LABEL_HEIGHT + GAP) + GAP), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    big, small = _font(15), _font(12)
    for i, tile in enumerate(tiles):
        x = GAP + (i % columns) * (tw + GAP)
        y = GAP + (i // columns) * (th + LABEL_HEIGHT + GAP)
        sheet.paste(Image.fromarray(tile.image), (x, y))
        draw.text((x + 4, y + th + 4), _fit_text(draw, tile.title, big, tw - 8), fill=(235, 235, 235), font=big)
        if tile.subtitle:
            draw.text((x + 4, y + th + 22), _fit_text(draw, tile.subtitle, small, tw - 8), fill=(160, 160, 160),
                      font=small)
    return sheet


def _data_uri(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=88)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def write_html(path: Path, tiles: list[Tile], title: str, sheet_png: str | None = None) -> None:
    """A self-contained HTML page: every tile with its label and canonical edit JSON."""
    cells = []
    for tile in tiles:
        edit = json.dumps(tile.edit.canonical_dict(), indent=1)
        cells.append(
            f'<figure><img src="{_data_uri(tile.image)}" alt="{html.escape(tile.title)}">'
            f"<figcaption><b>{html.escape(tile.title)}</b> {html.escape(tile.subtitle)}"
            f"<pre>{html.escape(edit)}</pre></figcaption></figure>")
    link = f'<p>Grid image: <a href="{html.escape(sheet_png)}">{html.escape(sheet_png)}</a></p>' if sheet_png else ""
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>
body{{background:#181818;color:#ddd;font:14px system-ui,sans-serif;margin:20px}}
main{{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));gap:14px}}
figure{{margin:0}} img{{width:100%;display:block}} pre{{font-size:11px;color:#9a9;white-space:pre-wrap}}
</style></head><body><h1>{html.escape(title)}</h1>{link}<main>
{chr(10).join(cells)}
</main></body></html>
"""
    path.write_text(page, encoding="utf-8")
