"""Render edits on the photo set once each, and compare two edits by how their renders look.

``LookRenders`` renders every distinct edit (by canonical JSON) once on the fixed photo set
(``editor.photoset``), caching the uint8 renders and their statistics (``editor.stats``), so
scoring 1,000 (prediction, reference) pairs builds one LUT per distinct edit, not one per pair.

* ``delta_e(a, b)``: mean CIEDE2000 ΔE over every pixel of every photo between the two renders.
* ``shifts(edit)``: per statistic, how far the edit moves it from the unedited photo, averaged over
  the photos (NaN-skipping: a colour range absent from a photo does not vote).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from editor.deltae import ciede2000, srgb_u8_to_lab
from editor.photoset import DEFAULT_WIDTH, photo_stack
from editor.render import Renderer, RenderOptions
from editor.stats import STATISTICS, change, measure, range_weights
from schemas.edit import Edit
from schemas.validation import validate_edit

# Building an edit's LUT is most of the cost of comparing renders. A 17³ table (the renderer uses
# 33³) is 2.3x cheaper and changes a render by ΔE 0.18 on average (0.64 at most) and a pair's ΔE by
# under 0.1 (measured on 150 simulated pairs): far below what the metric resolves. On photos this
# small, one render thread beats a pool.
EVAL_LUT_SIZE = 17


class LookRenders:
    """Cache of renders of edits on the photo set; not thread-safe (one per evaluation)."""

    def __init__(self, width: int = DEFAULT_WIDTH, options: RenderOptions | None = None) -> None:
        self.photos = photo_stack(width)
        self.options = options or replace(RenderOptions.from_settings(), lut_size=EVAL_LUT_SIZE, threads=1)
        self.weights = range_weights(self.photos)
        self.base = measure(self.photos, self.weights)
        self._renders: dict[str, np.ndarray] = {}
        self._shifts: dict[str, dict[str, float]] = {}
        self._labs: dict[str, np.ndarray] = {}

    @staticmethod
    def key(edit: Edit | dict[str, Any]) -> str:
        return validate_edit(edit).canonical_json()

    def render(self, edit: Edit | dict[str, Any]) -> np.ndarray:
        """uint8 (8, H, W, 3): ``edit`` rendered on each photo of the set."""
        key = self.key(edit)
        found = self._renders.get(key)
        if found is None:
            renderer = Renderer(validate_edit(edit), self.options)
            found = self.photos.copy() if renderer.is_identity else np.stack([renderer(p) for p in self.photos])
            self._renders[key] = found
        return found

    def shifts(self, edit: Edit | dict[str, Any]) -> dict[str, float]:
        """Statistic → mean change over the photos (``editor.stats.change``); NaN if no photo votes."""
        key = self.key(edit)
        found = self._shifts.get(key)
        if found is None:
            after = measure(self.render(edit), self.weights)
            found = {}
            for name in STATISTICS:
                moved = change(self.base[name], after[name], name)
                found[name] = float(np.nanmean(moved)) if np.isfinite(moved).any() else float("nan")
            self._shifts[key] = found
        return found

    def _lab(self, key: str, edit: Edit | dict[str, Any]) -> np.ndarray:
        lab = self._labs.get(key)
        if lab is None:
            lab = srgb_u8_to_lab(self.render(edit))
            if len(self._labs) < 128:  # the most repeated edits (references) come first; bound memory
                self._labs[key] = lab
        return lab

    def delta_e(self, a: Edit | dict[str, Any], b: Edit | dict[str, Any]) -> float:
        """Mean CIEDE2000 ΔE between the renders of ``a`` and ``b`` over the whole photo set."""
        ka, kb = self.key(a), self.key(b)
        if ka == kb:
            return 0.0
        return float(ciede2000(self._lab(ka, a), self._lab(kb, b)).mean())
