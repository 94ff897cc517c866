"""Evaluate a student on examples, or prediction/reference files, with ``trainer.metrics``.

Also holds the table in the paper's format (tool selection F1, quality, final per tool; overall)
and the paper's own rows to print next to ours (docs/trainer.md).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas.edit import TOOLS, Edit
from trainer.data import Example, read_edit_file
from trainer.metrics import Scores, align, score_subsets

# The paper's offline results (Sultan et al. 2024, Table: F1, quality, final per tool; overall).
PAPER_ROWS: tuple[tuple[str, str, tuple[float, ...], float], ...] = (
    ("Llama-2-7b-chat (paper)", "All", (.95, .63, .76, .75, .66, .70, .81, .71, .76), .74),
    ("FlanT5-base (paper)", "All", (.95, .57, .72, .76, .65, .70, .78, .71, .74), .72),
    ("FlanT5-base (paper)", "r_5", (.99, .68, .80, .90, .71, .79, .89, .82, .85), .81),
)


@dataclass
class EvalResult:
    subsets: dict[str, Scores]
    ids: list[str]
    predictions: list[Edit]
    references: list[Edit]
    seconds: float

    @property
    def overall(self) -> float:
        return self.subsets["All"].overall

    def record(self) -> dict[str, Any]:
        """What the registry stores per (model, test set); the gate reads ``overall``."""
        return {"overall": self.overall, "n": self.subsets["All"].n, "seconds": self.seconds,
                "subsets": {name: s.as_dict() for name, s in self.subsets.items()}}


def evaluate_student(student: Any, rows: Sequence[Example]) -> EvalResult:
    """Predict every row's prompt and score against its label (All, r_3, r_5)."""
    start = time.monotonic()
    preds = student.predict([r.prompt for r in rows])
    refs = [r.edit_obj for r in rows]
    subsets = score_subsets(preds, refs, [r.exporters for r in rows])
    return EvalResult(subsets, [r.id for r in rows], preds, refs, time.monotonic() - start)


def evaluate_files(predictions: str | Path, references: str | Path) -> EvalResult:
    """Score a predictions JSONL against a references JSONL, matched by id.

    Every reference is scored; a reference without a prediction counts as the empty edit ``{}``
    (and is reported on stderr); predictions for unknown ids are ignored. Predictions that are
    off-contract are repaired by the schemas policy; unrepairable ones count as ``{}``.
    """
    refs = read_edit_file(references, strict=True)
    preds = read_edit_file(predictions, strict=False)
    p, r, missing = align(preds.edits, refs.edits)
    if missing:
        print(f"warning: {len(missing)} reference(s) had no prediction (scored as {{}}): "
              f"{', '.join(missing[:5])}", file=sys.stderr)
    if preds.repaired or preds.invalid:
        print(f"warning: {preds.repaired} prediction(s) repaired, {preds.invalid} unparseable (scored as {{}})",
              file=sys.stderr)
    exporters = [refs.exporters.get(i) for i in refs.edits]
    return EvalResult(score_subsets(p, r, exporters), list(refs.edits), p, r, 0.0)


def _triple(s: Scores, tool: str) -> str:
    t = s.tools[tool]
    return f"{t.f1:.2f} {t.quality:.2f} {t.final:.2f}"


def paper_table(rows: Sequence[tuple[str, dict[str, Scores]]], *, with_paper: bool = True) -> str:
    """Markdown in the paper's format: per tool "F1 quality final", then overall."""
    lines = ["| student | test | n | adjust | selective adjust | filter | overall |", "|---|---|---|---|---|---|---|"]
    for name, subsets in rows:
        for subset, s in subsets.items():
            cells = " | ".join(_triple(s, t) for t in TOOLS)
            lines.append(f"| {name} | {subset} | {s.n} | {cells} | {s.overall:.2f} |")
    if with_paper:
        for name, subset, nums, overall in PAPER_ROWS:
            cells = " | ".join(" ".join(f"{x:.2f}" for x in nums[i:i + 3]) for i in (0, 3, 6))
            lines.append(f"| {name} | {subset} | paper | {cells} | {overall:.2f} |")
    return "\n".join(lines)


def detail_table(s: Scores) -> str:
    """Every number of one subset, including the magnitude-aware error."""
    lines = ["| tool | precision | recall | F1 | quality | final | MAE (points) | ref uses | both use |",
             "|---|---|---|---|---|---|---|---|---|"]
    for tool in TOOLS:
        t = s.tools[tool]
        lines.append(f"| {tool} | {t.precision:.3f} | {t.recall:.3f} | {t.f1:.3f} | {t.quality:.3f} | "
                     f"{t.final:.3f} | {t.mae:.2f} | {t.support} | {t.both} |")
    lines.append(f"\noverall = {s.overall:.4f} over n = {s.n}")
    return "\n".join(lines)
