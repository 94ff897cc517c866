"""Where accepted examples come from: the warehouse (DuckDB views) or a plain file.

Warehouse views (owned by ``warehouse/``): ``accepted_examples`` (one row per exported project:
prompt, prompt_norm, edit = the label, label_source, user/project ids, served_edit) and
``prompts`` (every prompt served, with what was served). Times served per (intent, edit) comes
from ``prompts``; exports per (intent, edit) from ``accepted_examples``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from foundation.settings import Settings
from schemas.exceptions import SchemaViolation
from schemas.text import normalise_prompt
from schemas.validation import validate_edit
from trainer.data import read_examples
from trainer.exceptions import DataError
from trainer.labels import Candidate, candidates_from_examples

_ACCEPTED_SQL = """
SELECT event_id, project_id, user_id, prompt, prompt_norm, edit, label_source
FROM accepted_examples
"""
_SERVED_SQL = """
SELECT prompt_norm, served_edit, count(*) AS n
FROM prompts WHERE served_edit IS NOT NULL
GROUP BY 1, 2
"""


def _canonical(text: Any) -> str | None:
    try:
        return validate_edit(json.loads(text) if isinstance(text, str) else text).canonical_json()
    except (SchemaViolation, json.JSONDecodeError, TypeError):
        return None


def from_duckdb(con: Any) -> tuple[list[Candidate], dict[tuple[str, str], int]]:
    """Accepted examples and times-served counts from a DuckDB connection with the warehouse views.

    Rows whose label is not a valid edit are skipped (the sink validated them; this is a guard).
    """
    cands = []
    for event_id, project_id, user_id, prompt, norm, edit, source in con.execute(_ACCEPTED_SQL).fetchall():
        canonical = _canonical(edit)
        if canonical is None:
            continue
        cands.append(Candidate(str(event_id), prompt, norm or normalise_prompt(prompt), canonical,
                               str(project_id), str(user_id), source or "teacher"))
    served: dict[tuple[str, str], int] = defaultdict(int)
    for norm, served_edit, n in con.execute(_SERVED_SQL).fetchall():
        canonical = _canonical(served_edit)
        if canonical is not None:
            served[(norm, canonical)] += int(n)  # several JSON spellings of one edit count together
    return cands, dict(served)


def from_warehouse(settings: Settings) -> tuple[list[Candidate], dict[tuple[str, str], int]]:
    from warehouse.catalog import connect

    con = connect(settings)
    try:
        cands, served = from_duckdb(con)
        # event ids are the app's, unique only within a project (warehouse/views.py)
        student_served = {(str(r[0]), str(r[1])) for r in con.execute(
            "SELECT project_id, event_id FROM accepted_examples WHERE served_kind = 'student'").fetchall()}
    finally:
        con.close()
    # The feedback-loop guard (streams/guard.py): student-served examples are capped at
    # TONEFLOW_STUDENT_SHARE_CAP of the rows, so the next student does not drift towards itself.
    from streams.guard import cap_student_share

    cands = cap_student_share(cands, [(c.project_id, c.event_id) in student_served for c in cands],
                              settings.student_share_cap,
                              seed=settings.seed)
    if not cands:
        msg = "the warehouse has no accepted examples yet: run the pipeline or pass --input FILE"
        raise DataError(msg)
    return cands, served


def from_file(path: str | Path) -> tuple[list[Candidate], dict[tuple[str, str], int]]:
    return candidates_from_examples(read_examples(path)), {}
