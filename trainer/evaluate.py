"""Evaluate a student on examples, or prediction/reference files, with ``trainer.metrics``.

Also holds the table in the paper's format (tool selection F1, quality, final per tool; overall),
the paper's own rows to print next to ours (docs/trainer.md), and the honest-evaluation table next
to it: overall on the intent-disjoint test and its two look subsets, rendered-look agreement
(``trainer.rendered``) and real-request direction accuracy (``trainer.requests``).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from editor.lookcompare import LookRenders
from schemas.edit import TOOLS, Edit
from trainer.data import Example, read_edit_file
from trainer.grouping import IntentGroups, look_subsets
from trainer.look_keys import look_keys
from trainer.metrics import Scores, align, score, score_subsets
from trainer.rendered import RenderedAgreement, rendered_agreement
from trainer.requests import Request, RequestResult, run_requests

# The paper's offline results (Sultan et al. 2024, Table: F1, quality, final per tool; overall).
PAPER_ROWS: tuple[tuple[str, str, tuple[float, ...], float], ...] = (
    ("Llama-2-7b-chat (paper)", "All", (.95, .63, .76, .75, .66, .70, .81, .71, .76), .74),
    ("FlanT5-base (paper)", "All", (.95, .57, .72, .76, .65, .70, .78, .71, .74), .72),
    ("FlanT5-base (paper)", "r_5", (.99, .68, .80, .90, .71, .79, .89, .82, .85), .81),
)


LOOK_SUBSETS = {"seen_looks": "seen looks, new wording", "unseen_looks": "unseen looks"}


@dataclass
class EvalResult:
    subsets: dict[str, Scores]
    ids: list[str]
    predictions: list[Edit]
    references: list[Edit]
    seconds: float
    rendered: RenderedAgreement | None = None
    looks: dict[str, list[int]] = field(default_factory=dict)  # subset name → row indices
    requests: RequestResult | None = None
    excluded_shared_groups: int = 0  # test rows left out because their intent group is in training
    group_balanced: float | None = None  # overall with each row weighing 1 / its intent group's size (beside ``overall``)

    @property
    def overall(self) -> float:
        return self.subsets["All"].overall

    def rendered_summary(self) -> dict[str, dict[str, Any]]:
        """Rendered agreement on All and on each look subset (empty without renders)."""
        if self.rendered is None:
            return {}
        out = {"All": self.rendered.summary()}
        out.update({name: self.rendered.summary(idx) for name, idx in self.looks.items() if idx})
        return out

    def ceilings(self) -> dict[str, float]:
        """The overall of a model that reproduced every reference exactly, on All and each look subset.

        Below 1 where no reference of the subset uses some tool: that tool's F1 is 0 by the paper's
        definition (trainer/metrics.py), whatever the model does, so a subset whose references
        never use a filter is capped at 2/3. A subset's overall is read against its ceiling.
        """
        out = {"All": score(self.references, self.references).overall}
        for name, idx in self.looks.items():
            if idx:
                refs = [self.references[i] for i in idx]
                out[name] = score(refs, refs).overall
        return out

    def record(self) -> dict[str, Any]:
        """What the registry stores per (model, test set); the gate reads ``overall``,
        ``rendered.All.delta_e`` and ``requests.accuracy``."""
        out: dict[str, Any] = {"overall": self.overall, "n": self.subsets["All"].n, "seconds": self.seconds,
                               "subsets": {name: s.as_dict() for name, s in self.subsets.items()}}
        if self.rendered is not None:
            out["rendered"] = self.rendered_summary()
        if self.requests is not None:
            out["requests"] = self.requests.as_dict()
        if self.looks:
            out["excluded_shared_groups"] = self.excluded_shared_groups
        if self.group_balanced is not None:
            out["group_balanced_overall"] = self.group_balanced
        out["ceilings"] = self.ceilings()
        return out

    def public(self) -> dict[str, Any]:
        """``toneflow eval --json``: the paper's numbers, then the look subsets, renders, requests."""
        out = self.subsets["All"].public()
        ceilings = self.ceilings()
        for name in LOOK_SUBSETS:
            if name in self.subsets:
                out[name] = {"overall": self.subsets[name].overall, "n": self.subsets[name].n,
                             "ceiling": ceilings[name]}
        rendered = self.rendered_summary()
        if rendered:
            out["rendered"] = {k: rendered["All"][k] for k in ("delta_e", "direction_agreement", "decisions",
                                                                "per_statistic")}
            out["rendered"]["subsets"] = {name: {"delta_e": r["delta_e"], "direction_agreement": r["direction_agreement"]}
                                          for name, r in rendered.items() if name != "All"}
        if self.group_balanced is not None:
            out["group_balanced_overall"] = self.group_balanced
        if self.requests is not None:
            out["requests"] = self.requests.as_dict(failures=0)
        return out


def ceiling_note(ceiling: float | None) -> str:
    """"; a perfect model: 0.667" where a subset's ceiling (``EvalResult.ceilings``) is below 1, else ""."""
    return f"; a perfect model: {ceiling:.3f}" if ceiling is not None and ceiling < 1 - 1e-9 else ""


def group_labels(rows: Sequence[Example], train_rows: Sequence[Example]) -> tuple[list[str], list[str]]:
    """Intent-group labels of test rows and of training rows, grouped together."""
    groups = IntentGroups([r.prompt_norm for r in (*rows, *train_rows)])
    return [groups.label(r.prompt_norm) for r in rows], [groups.label(r.prompt_norm) for r in train_rows]


def group_balanced(preds: Sequence[Edit], refs: Sequence[Edit], groups: Sequence[str]) -> float:
    """The paper's overall with every intent group weighing the same: each row weighs 1 / its group's size.

    Not a mean of per-group overalls: a group whose edits use one tool scores at most 1/3 on its own
    (a tool used by neither side has final 0), so that mean would punish even the teacher. Printed
    *beside* the row-weighted overall (the paper's metric and the targets'), never instead: the
    demo's traffic is Zipf-popular and one intent can be a third of its test split.
    """
    if not groups:
        return float("nan")
    sizes = Counter(groups)
    return score(preds, refs, [1.0 / sizes[g] for g in groups]).overall


def evaluate_student(student: Any, rows: Sequence[Example], *, train_rows: Sequence[Example] | None = None,
                     render: bool = True, requests: Sequence[Request] | None = None) -> EvalResult:
    """Predict every row's prompt and score against its label (All, r_3, r_5).

    With ``train_rows`` (the model's training data), test rows whose intent group also occurs in
    training are left out (counted in ``excluded_shared_groups``), and the rest are also scored as
    two look subsets: *seen looks, new wording* and *unseen looks* (``trainer.grouping.look_subsets``).
    With ``render``, the rendered agreement of every prediction with its reference; with
    ``requests``, the real-request benchmark.
    """
    start = time.monotonic()
    excluded = 0
    if train_rows is not None:
        test_groups, trained = group_labels(rows, train_rows)
        train_groups = set(trained)
        # Never judge on rows whose intent group was trained on (an old pin, a snapshot from before
        # the grouping): they measure memory, not generalisation.
        keep = [i for i, g in enumerate(test_groups) if g not in train_groups]
        excluded = len(rows) - len(keep)
        rows, test_groups = [rows[i] for i in keep], [test_groups[i] for i in keep]
    preds = student.predict([r.prompt for r in rows])
    refs = [r.edit_obj for r in rows]
    subsets = score_subsets(preds, refs, [r.exporters for r in rows])
    looks: dict[str, list[int]] = {}
    balanced = None
    if train_rows is not None:
        balanced = group_balanced(preds, refs, test_groups)
        keys = look_keys([r.prompt for r in (*rows, *train_rows)])
        looks = look_subsets(keys[:len(rows)], test_groups, zip(keys[len(rows):], trained, strict=True))
        for name, idx in looks.items():
            if idx:
                subsets[name] = score([preds[i] for i in idx], [refs[i] for i in idx])
    renders = LookRenders() if render or requests else None
    rendered = rendered_agreement(preds, refs, renders) if render else None
    req = run_requests(student.predict, requests, renders) if requests else None
    return EvalResult(subsets, [r.id for r in rows], preds, refs, time.monotonic() - start, rendered, looks, req,
                      excluded, balanced)


def evaluate_files(predictions: str | Path, references: str | Path, *, render: bool = True) -> EvalResult:
    """Score a predictions JSONL against a references JSONL, matched by id.

    Every reference is scored; a reference without a prediction counts as the empty edit ``{}``
    (and is reported on stderr); predictions for unknown ids are ignored. Predictions that are
    off-contract are repaired by the schemas policy; unrepairable ones count as ``{}``.
    With ``render``, also the rendered-look agreement of each pair (``trainer.rendered``).
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
    return EvalResult(score_subsets(p, r, exporters), list(refs.edits), p, r, 0.0,
                      rendered_agreement(p, r) if render else None)


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


def honest_table(result: EvalResult, name: str = "model") -> str:
    """Markdown next to the paper table: overall per look subset, rendered agreement, requests."""
    rendered = result.rendered_summary()
    lines = ["| model | test subset | n | overall | a perfect model | ΔE (CIEDE2000) | direction agreement |",
             "|---|---|---|---|---|---|---|"]
    everything = "all (intent-disjoint)" if result.looks else "all"
    ceilings = result.ceilings()
    for key, label in (("All", everything), *LOOK_SUBSETS.items()):
        if key not in result.subsets:
            continue
        s, r = result.subsets[key], rendered.get(key)
        de = f"{r['delta_e']:.2f}" if r else "-"
        da = f"{r['direction_agreement']:.3f} ({r['decisions']})" if r else "-"
        lines.append(f"| {name} | {label} | {s.n} | {s.overall:.3f} | {ceilings[key]:.3f} | {de} | {da} |")
    lines.append("\na perfect model: what reproducing every reference of the subset scores; below 1 where no "
                 "reference of it uses some tool (that tool's F1 is 0 by the paper's definition, trainer/metrics.py)")
    if result.group_balanced is not None:
        lines.append("\ngroup-balanced overall (the same metric, each row weighing 1 / its intent group's size: "
                     f"every intent once; beside the row-weighted overall above, not instead): {result.group_balanced:.3f}")
    if result.requests is not None:
        q = result.requests
        lines.append(f"\nreal-request direction accuracy: {q.met}/{q.n} = {q.accuracy:.3f} (set {q.set_id}; "
                     + ", ".join(f"{k} {v['met']:.0f}/{v['n']:.0f}" for k, v in q.per_statistic.items()) + ")")
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
