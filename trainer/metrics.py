"""The paper's offline metrics (docs/trainer.md), with their exact definitions below.

Every model, every benchmark and ``toneflow eval`` go through :func:`score`; nothing else computes
a score. For each tool t in (adjust, selective_adjust, filter), over all n test samples:

* ``used_ref`` / ``used_pred``: t's key is present in the reference / prediction edit, read in
  canonical form (``schemas.canonical_dict``): a tool with nothing to do (all parameters 0, or a
  filter at intensity 0) renders exactly like the key being absent, so it counts as not used.
* TP = used_ref ∧ used_pred, FP = ¬used_ref ∧ used_pred, FN = used_ref ∧ ¬used_pred.
  precision = TP / (TP + FP), recall = TP / (TP + FN) (each 0 when its denominator is 0);
  F1 = 2·P·R / (P + R), and F1 = 0 when TP = 0.
* quality over the samples where both use t (the TP samples):
  adjust → mean cosine similarity of the 14-parameter vectors (``ADJUST_PARAMS`` order, absent
  parameter = 0); selective_adjust → the same over the 24-vector (8 ranges × hue, saturation,
  luminance); filter → accuracy of the filter name. Cosine of two all-zero vectors = 1, of one
  all-zero and one non-zero vector = 0. No such samples → quality 0.
* final_t = harmonic mean of F1_t and quality_t = 2·F1·Q / (F1 + Q) (0 when both are 0);
  overall = mean of the three finals.
* mae (magnitude-aware, because cosine ignores magnitude): mean absolute parameter error over the
  same TP samples: adjust → mean |Δ| over the 14 parameters, selective_adjust → over the 24 values,
  filter → |Δ intensity|. Units are parameter points (-100..100). No such samples → 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from schemas.edit import ADJUST_PARAMS, COLOUR_RANGES, HSL_CHANNELS, TOOLS, Edit, adjust_vector, selective_vector

SUBSET_THRESHOLDS: tuple[int, ...] = (3, 5)
"""r_k = test intents whose chosen edit was exported by ≥ k distinct users (docs/trainer.md)."""


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity; two all-zero vectors → 1, exactly one all-zero vector → 0."""
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(x * x for x in b))
    if na == 0 and nb == 0:
        return 1.0
    if na == 0 or nb == 0:
        return 0.0
    return sum(x * y for x, y in zip(a, b, strict=True)) / (na * nb)


def harmonic(a: float, b: float) -> float:
    """Harmonic mean of two scores in [0, 1]; 0 when both are 0."""
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


@dataclass(frozen=True)
class ToolScore:
    precision: float
    recall: float
    f1: float
    quality: float
    final: float
    mae: float
    support: int  # samples where the reference uses the tool
    both: int  # samples where both use it (the quality denominator)

    def public(self) -> dict[str, float]:
        """The five numbers `toneflow eval --json` prints, in the issue's key order."""
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1,
                "quality": self.quality, "final": self.final}


@dataclass(frozen=True)
class Scores:
    tools: dict[str, ToolScore]
    overall: float
    n: int
    filter_confusion: dict[str, dict[str, int]] = field(default_factory=dict)  # ref name → pred name → count
    param_mae: dict[str, float] = field(default_factory=dict)  # "adjust.contrast" → mean |Δ| over TP samples

    def public(self) -> dict[str, Any]:
        """Exactly ``{"adjust": {...}, "selective_adjust": {...}, "filter": {...}, "overall", "n"}``."""
        out: dict[str, Any] = {t: self.tools[t].public() for t in TOOLS}
        out["overall"] = self.overall
        out["n"] = self.n
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"tools": {t: asdict(s) for t, s in self.tools.items()}, "overall": self.overall, "n": self.n,
                "filter_confusion": self.filter_confusion, "param_mae": self.param_mae}


def _vectors(tool: str, edit: Edit) -> list[int]:
    if tool == "adjust":
        return adjust_vector(edit)
    return selective_vector(edit)


_PARAM_NAMES = {
    "adjust": [f"adjust.{p}" for p in ADJUST_PARAMS],
    "selective_adjust": [f"selective_adjust.{r}.{c}" for r in COLOUR_RANGES for c in HSL_CHANNELS],
}


def _weighted_mean(values: Sequence[float], weights: Sequence[float]) -> float:
    total = sum(weights)
    return sum(v * w for v, w in zip(values, weights, strict=True)) / total if total else 0.0


def score(predictions: Sequence[Edit], references: Sequence[Edit],
          weights: Sequence[float] | None = None) -> Scores:
    """Score aligned prediction/reference edits (same length, same order).

    ``weights`` (one per sample, default 1) weigh each sample in TP/FP/FN and in the quality and
    mae means (``param_mae`` stays unweighted): the same metric with some samples counting less
    (``trainer.evaluate.group_balanced`` gives each intent group a total weight of 1). Counts
    (support, both) stay unweighted.
    """
    if len(predictions) != len(references):
        msg = f"{len(predictions)} predictions for {len(references)} references"
        raise ValueError(msg)
    if weights is None:
        weights = [1.0] * len(references)
    elif len(weights) != len(references):
        msg = f"{len(weights)} weights for {len(references)} references"
        raise ValueError(msg)
    pred_used = [set(p.canonical_dict()) for p in predictions]
    ref_used = [set(r.canonical_dict()) for r in references]
    tools: dict[str, ToolScore] = {}
    confusion: dict[str, dict[str, int]] = {}
    param_abs: dict[str, list[float]] = {}
    for tool in TOOLS:
        tp = fp = fn = 0.0
        support = both = 0
        qualities: list[float] = []
        errors: list[float] = []
        tp_weights: list[float] = []
        for pred, ref, pu, ru, w in zip(predictions, references, pred_used, ref_used, weights, strict=True):
            in_pred, in_ref = tool in pu, tool in ru
            tp += w * (in_pred and in_ref)
            fp += w * (in_pred and not in_ref)
            fn += w * (in_ref and not in_pred)
            support += in_ref
            both += in_pred and in_ref
            if not (in_pred and in_ref):
                continue
            tp_weights.append(w)
            if tool == "filter":
                assert pred.filter is not None and ref.filter is not None
                qualities.append(1.0 if pred.filter.name == ref.filter.name else 0.0)
                errors.append(abs(pred.filter.intensity - ref.filter.intensity))
                row = confusion.setdefault(ref.filter.name, {})
                row[pred.filter.name] = row.get(pred.filter.name, 0) + 1
                continue
            pv, rv = _vectors(tool, pred), _vectors(tool, ref)
            qualities.append(cosine(pv, rv))
            diffs = [abs(a - b) for a, b in zip(pv, rv, strict=True)]
            errors.append(sum(diffs) / len(diffs))
            for name, d in zip(_PARAM_NAMES[tool], diffs, strict=True):
                param_abs.setdefault(name, []).append(d)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 0.0 if tp == 0 else 2 * precision * recall / (precision + recall)
        quality = _weighted_mean(qualities, tp_weights)
        mae = _weighted_mean(errors, tp_weights)
        tools[tool] = ToolScore(precision, recall, f1, quality, harmonic(f1, quality), mae, support, both)
    overall = sum(tools[t].final for t in TOOLS) / len(TOOLS)
    param_mae = {k: sum(v) / len(v) for k, v in param_abs.items()}
    return Scores(tools, overall, len(references), confusion, param_mae)


def score_subsets(predictions: Sequence[Edit], references: Sequence[Edit],
                  exporters: Sequence[int | None] | None = None,
                  thresholds: Iterable[int] = SUBSET_THRESHOLDS) -> dict[str, Scores]:
    """Scores on ``All`` and on each ``r_k`` (samples whose reference was exported by ≥ k users).

    ``exporters`` holds the distinct-exporting-user count of each reference (None = unknown,
    which keeps the sample out of every r_k). A subset with no samples is left out.
    """
    out = {"All": score(predictions, references)}
    if exporters is None:
        return out
    for k in thresholds:
        idx = [i for i, e in enumerate(exporters) if e is not None and e >= k]
        if idx:
            out[f"r_{k}"] = score([predictions[i] for i in idx], [references[i] for i in idx])
    return out


SIGN_MIN = 10  # parameter points: a smaller reference change is not a direction the user asked for


def sign_agreement(predictions: Sequence[Edit], references: Sequence[Edit], min_abs: int = SIGN_MIN) -> float:
    """Share of the reference's clear changes (|value| >= ``min_abs`` in the adjust and
    selective_adjust vectors) that the prediction makes the same way by at least half as much.

    A validation signal, not one of the paper's metrics: cosine quality forgives a small parameter
    pointing the wrong way, a user asking "less brightness" does not (issue 12). 1.0 when no
    reference changes anything clearly.
    """
    hits = total = 0
    for pred, ref in zip(predictions, references, strict=True):
        for tool in ("adjust", "selective_adjust"):
            for p, r in zip(_vectors(tool, pred), _vectors(tool, ref), strict=True):
                if abs(r) >= min_abs:
                    total += 1
                    hits += p * (1 if r > 0 else -1) >= abs(r) / 2
    return hits / total if total else 1.0


def sample_score(pred: Edit, ref: Edit) -> float:
    """A per-sample agreement in [0, 1], used only to pick the student's mistakes for augmentation.

    Mean over the tools either edit uses of: 0 if only one uses it, else the tool's quality term
    (cosine, or name match). 1 when neither edit uses any tool.
    """
    pu, ru = set(pred.canonical_dict()), set(ref.canonical_dict())
    tools = pu | ru
    if not tools:
        return 1.0
    total = 0.0
    for tool in tools:
        if tool not in pu or tool not in ru:
            continue
        if tool == "filter":
            assert pred.filter is not None and ref.filter is not None
            total += pred.filter.name == ref.filter.name
        else:
            total += cosine(_vectors(tool, pred), _vectors(tool, ref))
    return total / len(tools)


def align(predictions: Mapping[str, Edit], references: Mapping[str, Edit]) -> tuple[list[Edit], list[Edit], list[str]]:
    """Match by id: every reference is scored; a missing prediction counts as the empty edit.

    Returns (predictions, references, ids of references that had no prediction).
    """
    missing = [i for i in references if i not in predictions]
    ids = list(references)
    return [predictions.get(i, Edit()) for i in ids], [references[i] for i in ids], missing
