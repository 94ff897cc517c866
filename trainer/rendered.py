"""Rendered-look agreement: do the prediction and the reference *look* alike on real photos?

The paper's metrics compare parameters; two edits with a cosine of 0.9 can still look different,
and two different parameter sets can look the same. Here both edits are rendered on the fixed
photo set (``editor.photoset``, 8 photographs at 64×48, one LUT per distinct edit) and compared:

* ``delta_e``: mean CIEDE2000 ΔE over every pixel of every photo between the two renders
  (``editor.deltae``); 0 = identical, about 2 = just noticeable, above 10 = clearly another look.
* direction agreement, per statistic of ``editor.stats`` (luma, chroma, warmth, contrast, green
  and each colour range's saturation): the reference *moves* a statistic when its mean change over
  the photos is at least ``NOTICEABLE[s]``; the prediction *agrees* when it moves that statistic
  the same way by at least half of that. Agreement = agreeing decisions / decisions, over every
  (example, statistic) where the reference moves; per statistic likewise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from editor.lookcompare import LookRenders
from editor.stats import NOTICEABLE, STATISTICS
from schemas.edit import Edit

AGREE_FRACTION = 0.5  # the prediction must move a statistic by half the noticeable change


@dataclass
class RenderedAgreement:
    """Per-example ΔE and direction decisions; ``summary(indices)`` aggregates any subset."""

    delta_e: np.ndarray  # (n,)
    moved: np.ndarray  # (n, S) bool: the reference moves statistic s noticeably
    agree: np.ndarray  # (n, S) bool: ... and the prediction moves it the same way
    seconds: float = 0.0

    def summary(self, indices: Sequence[int] | None = None) -> dict[str, Any]:
        idx = np.arange(len(self.delta_e)) if indices is None else np.asarray(indices, dtype=int)
        moved, agree = self.moved[idx], self.agree[idx]
        decisions = int(moved.sum())
        per = {}
        for k, name in enumerate(STATISTICS):
            n = int(moved[:, k].sum())
            if n:
                per[name] = {"n": n, "agreement": float(agree[:, k].sum() / n)}
        return {"n": len(idx), "delta_e": float(self.delta_e[idx].mean()) if len(idx) else 0.0,
                "delta_e_p90": float(np.percentile(self.delta_e[idx], 90)) if len(idx) else 0.0,
                "direction_agreement": float(agree.sum() / decisions) if decisions else 1.0,
                "decisions": decisions, "per_statistic": per}

    def per_example(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        out = []
        for i, example_id in enumerate(ids):
            moved = [s for k, s in enumerate(STATISTICS) if self.moved[i, k]]
            wrong = [s for k, s in enumerate(STATISTICS) if self.moved[i, k] and not self.agree[i, k]]
            out.append({"id": example_id, "delta_e": float(self.delta_e[i]), "reference_moves": moved,
                        "disagrees_on": wrong})
        return out


def _decide(pred: dict[str, float], ref: dict[str, float]) -> tuple[list[bool], list[bool]]:
    moved, agree = [], []
    for name in STATISTICS:
        r, p = ref[name], pred[name]
        m = not math.isnan(r) and abs(r) >= NOTICEABLE[name]
        moved.append(m)
        agree.append(m and not math.isnan(p) and p * math.copysign(1.0, r) >= AGREE_FRACTION * NOTICEABLE[name])
    return moved, agree


def rendered_agreement(predictions: Sequence[Edit], references: Sequence[Edit],
                       renders: LookRenders | None = None) -> RenderedAgreement:
    """Render every distinct edit once and compare each (prediction, reference) pair."""
    import time

    start = time.monotonic()
    renders = renders or LookRenders()
    n = len(references)
    delta = np.zeros(n)
    moved = np.zeros((n, len(STATISTICS)), dtype=bool)
    agree = np.zeros_like(moved)
    # References repeat (a look is requested many times): visit them grouped, so the Lab cache
    # of LookRenders keeps each reference's conversion while its predictions are compared.
    order = sorted(range(n), key=lambda i: references[i].canonical_json())
    for i in order:
        pred, ref = predictions[i], references[i]
        delta[i] = renders.delta_e(pred, ref)
        m, a = _decide(renders.shifts(pred), renders.shifts(ref))
        moved[i], agree[i] = m, a
    return RenderedAgreement(delta, moved, agree, time.monotonic() - start)
