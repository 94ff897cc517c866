"""The ``reviews`` table (the paper's "reality check", done by people in the console) and its numbers.

One row per rating: a reviewer saw a test prompt, the original photo and two renders (teacher and
student, sides randomised), and answered whether each render is relevant to the request and
whether the student's matches the teacher's. Rows are written once, under their ``review_id``
(``warehouse.writer.write_rows``); a reviewer who rates the same item again replaces their
earlier answer in every number below (the latest row per reviewer, model version and item counts).

Per model version: relevance (student and teacher), mimicry, and agreement between reviewers as
Fleiss' kappa over the items that at least two reviewers rated.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from foundation.settings import Settings

TABLE = "reviews"


def review_row(*, reviewer: str, version: str, item_id: str, prompt: str, student_relevant: bool,
               teacher_relevant: bool, mimics: bool, **extra: Any) -> dict[str, Any]:
    """A complete ``reviews`` row; ``extra`` carries context (photo, sides, edits, teacher version)."""
    if not reviewer.strip():
        msg = "a review needs a reviewer id: enter your name on the Review page"
        raise ValueError(msg)
    return {"review_id": uuid.uuid4().hex, "reviewer": reviewer.strip(), "version": version, "item_id": item_id,
            "prompt": prompt, "student_relevant": bool(student_relevant), "teacher_relevant": bool(teacher_relevant),
            "mimics": bool(mimics), **extra, "ts": datetime.now(UTC)}


def write_review(settings: Settings, row: dict[str, Any]) -> Path:
    from warehouse.writer import write_rows

    return write_rows(settings, TABLE, [row], key=row["review_id"])


def fleiss_kappa(counts: list[list[int]]) -> float | None:
    """Fleiss' kappa for ``counts[i][j]`` = raters who put item ``i`` in category ``j``.

    Items may have different numbers of raters (each needs >= 2; others are left out), the usual
    generalisation: P_i = (sum_j n_ij^2 - n_i) / (n_i (n_i - 1)), p_j from all ratings. ``None``
    when no item has two raters; 1.0 when everyone always chose one and the same category.
    """
    rows = [r for r in counts if sum(r) >= 2]
    if not rows:
        return None
    total = sum(sum(r) for r in rows)
    p_j = [sum(r[j] for r in rows) / total for j in range(len(rows[0]))]
    p_bar = sum((sum(c * c for c in r) - sum(r)) / (sum(r) * (sum(r) - 1)) for r in rows) / len(rows)
    p_e = sum(p * p for p in p_j)
    if p_e >= 1.0:
        return 1.0  # one category only: perfect (and trivial) agreement
    return (p_bar - p_e) / (1 - p_e)


@dataclass
class ReviewStats:
    version: str
    ratings: int = 0
    items: int = 0
    reviewers: int = 0
    student_relevance: float | None = None
    teacher_relevance: float | None = None
    mimicry: float | None = None
    shared_items: int = 0  # items rated by >= 2 reviewers: what kappa is computed on
    kappa_mimicry: float | None = None
    kappa_relevance: float | None = None
    by_reviewer: dict[str, int] = field(default_factory=dict)


_LATEST = f"""
    SELECT version, reviewer, item_id, student_relevant, teacher_relevant, mimics FROM {TABLE}
    QUALIFY row_number() OVER (PARTITION BY version, reviewer, item_id ORDER BY ts DESC) = 1
"""


def _binary_kappa(votes: dict[str, list[bool]]) -> float | None:
    return fleiss_kappa([[sum(v), len(v) - sum(v)] for v in votes.values() if len(v) >= 2])


def review_stats(con: Any, version: str | None = None) -> dict[str, ReviewStats]:
    """Per model version: relevance, mimicry and Fleiss' kappa, from a ``warehouse.catalog`` connection."""
    sql, params = _LATEST, []
    if version is not None:
        sql, params = f"SELECT * FROM ({_LATEST}) WHERE version = ?", [version]
    out: dict[str, ReviewStats] = {}
    per_item: dict[str, dict[str, list[tuple[bool, bool, bool]]]] = {}
    for ver, reviewer, item, s_rel, t_rel, mimics in con.execute(sql, params).fetchall():
        st = out.setdefault(ver, ReviewStats(ver))
        st.ratings += 1
        st.by_reviewer[reviewer] = st.by_reviewer.get(reviewer, 0) + 1
        per_item.setdefault(ver, {}).setdefault(item, []).append((bool(s_rel), bool(t_rel), bool(mimics)))
    for ver, st in out.items():
        items = per_item[ver]
        answers = [a for votes in items.values() for a in votes]
        st.items, st.reviewers = len(items), len(st.by_reviewer)
        st.student_relevance = sum(a[0] for a in answers) / len(answers)
        st.teacher_relevance = sum(a[1] for a in answers) / len(answers)
        st.mimicry = sum(a[2] for a in answers) / len(answers)
        st.shared_items = sum(len(v) >= 2 for v in items.values())
        st.kappa_mimicry = _binary_kappa({k: [a[2] for a in v] for k, v in items.items()})
        st.kappa_relevance = _binary_kappa({k: [a[0] for a in v] for k, v in items.items()})
    return out


def version_review_stats(settings: Settings, version: str) -> ReviewStats:
    """The numbers of one model version (zeros when nobody has reviewed it yet)."""
    from warehouse.catalog import connect

    con = connect(settings)
    try:
        return review_stats(con, version).get(version, ReviewStats(version))
    finally:
        con.close()
