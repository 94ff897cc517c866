"""Render an edit on 8-bit RGB frames: one 3D LUT for the pointwise part, then the spatial ops.

``Renderer(edit)`` does all per-edit work once (validate, compose and cache the LUT, build the
lookup processor); calling it on a frame costs one LUT lookup plus the spatial filters the edit
uses. Guarantees: an edit that renders like ``{}`` returns a bit-exact copy of the input; the
output is always uint8 H×W×3 of the input's shape; inputs are never modified.

``reference_render`` is the slow per-operation numpy path (float32 chain on every pixel, the
look evaluated from its recipe): the baseline of the benchmark and the oracle of the LUT tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from editor.colour import F32
from editor.cube import DEFAULT_SIZE
from editor.exceptions import EditorError
from editor.looks import RECIPES
from editor.lut import Backend, LutApplier, edit_table, resolve_threads
from editor.pointwise import apply_pointwise
from editor.spatial import apply_spatial
from schemas.edit import Edit
from schemas.validation import validate_edit


@dataclass(frozen=True)
class RenderOptions:
    lut_size: int = DEFAULT_SIZE
    backend: Backend = "auto"
    threads: int = 0
    cache_dir: Path | None = None

    @classmethod
    def from_settings(cls, settings: Any = None) -> RenderOptions:
        if settings is None:
            from foundation.settings import get_settings

            settings = get_settings()
        return cls(settings.editor_lut_size, settings.editor_lut_backend, settings.editor_threads,
                   settings.editor_cache_dir or settings.data_path / "editor" / "looks")

    @property
    def looks_dir(self) -> Path:
        return self.cache_dir or Path("data") / "editor" / "looks"


@lru_cache(maxsize=32)
def _cached_table(canonical_json: str, size: int, cache_dir: Path) -> np.ndarray | None:
    import json

    return edit_table(json.loads(canonical_json), size, cache_dir)


def _check_frame(img: np.ndarray) -> np.ndarray:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        got = f"{getattr(img, 'dtype', type(img).__name__)} {getattr(img, 'shape', '')}"
        msg = f"the editor renders uint8 H×W×3 RGB frames, got {got}"
        raise EditorError(msg)
    return img


class Renderer:
    """A compiled edit. Thread-safe to call; build one per edit, reuse it for every frame."""

    def __init__(self, edit: Edit | dict[str, Any], options: RenderOptions | None = None) -> None:
        self.edit = validate_edit(edit)
        self.options = options or RenderOptions.from_settings()
        self.canonical = self.edit.canonical_dict()
        table = _cached_table(self.edit.canonical_json(), self.options.lut_size, self.options.looks_dir)
        self.lut = LutApplier(table, self.options.backend, self.options.threads) if table is not None else None
        adjust = self.canonical.get("adjust", {})
        self.sharpen = adjust.get("sharpen", 0) / 100
        self.structure = adjust.get("structure", 0) / 100
        self.bloom = adjust.get("bloom", 0) / 100
        self.threads = resolve_threads(self.options.threads)

    @property
    def is_identity(self) -> bool:
        return self.lut is None and not (self.sharpen or self.structure or self.bloom)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        _check_frame(img)
        if self.is_identity:
            return img.copy()
        if self.lut is None:
            return apply_spatial(img, self.sharpen, self.structure, self.bloom, threads=self.threads)
        # The LUT's output is a new frame: the spatial ops finish it in place (no second frame).
        out = self.lut(img)
        return apply_spatial(out, self.sharpen, self.structure, self.bloom, out=out, threads=self.threads)


def render_image(img: np.ndarray, edit: Edit | dict[str, Any], options: RenderOptions | None = None) -> np.ndarray:
    """Render ``edit`` on one uint8 RGB image (see ``Renderer`` for the guarantees)."""
    return Renderer(edit, options)(img)


def reference_render(img: np.ndarray, edit: Edit | dict[str, Any]) -> np.ndarray:
    """The same edit, one float32 numpy operation after another on every pixel (no LUT)."""
    canonical = validate_edit(edit).canonical_dict()
    _check_frame(img)
    adjust = canonical.get("adjust", {})
    x = apply_pointwise(img.astype(F32) / 255.0, adjust, canonical.get("selective_adjust", {}))
    flt = canonical.get("filter")
    if flt:
        x = x + flt["intensity"] / 100 * (RECIPES[flt["name"]](x) - x)
    out = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    return apply_spatial(out, adjust.get("sharpen", 0) / 100, adjust.get("structure", 0) / 100,
                         adjust.get("bloom", 0) / 100)
