"""Label policies: which edit becomes the training label of each intent.

Input is every accepted example (a ``Candidate``); an intent is a normalised prompt.

* ``export_rate`` (default, the paper's rule): per intent, the one edit with the highest export
  rate = distinct projects that exported it / times it was served for that intent. Only edits
  served at least ``min_served`` times compete on rate (a 1/1 must not beat a 40/50); when no edit
  of an intent was served that often (or serving counts are unknown, as for a plain file), the
  most-exported edit wins. Ties: more exports, then the canonical JSON (deterministic).
* ``all_accepted``: every accepted example is a row (several labels per intent possible).
* ``user_corrected_first``: per intent, edits users corrected by hand win over teacher edits;
  among them, the most exported; intents without corrections fall back to ``export_rate``.

``exporters`` on each row = distinct users who exported that (intent, edit): it defines r_3/r_5.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from trainer.data import Example

LabelPolicy = Literal["export_rate", "all_accepted", "user_corrected_first"]
LABEL_POLICIES: tuple[LabelPolicy, ...] = ("export_rate", "all_accepted", "user_corrected_first")


@dataclass(frozen=True)
class Candidate:
    """One accepted example: a user exported a project whose look request was ``prompt``."""

    event_id: str
    prompt: str
    prompt_norm: str
    edit: str  # canonical JSON
    project_id: str
    user_id: str
    label_source: str = "teacher"
    weight: int = 1  # exporters already aggregated upstream (files with an ``exporters`` column)


def intent_id(prompt_norm: str) -> str:
    return hashlib.sha256(prompt_norm.encode()).hexdigest()[:16]


def _exporters(cands: Iterable[Candidate]) -> int:
    cands = list(cands)
    users = {c.user_id for c in cands}
    return max(len(users), max((c.weight for c in cands), default=0))


def _pick_by_rate(by_edit: Mapping[str, list[Candidate]], served: Mapping[str, int], min_served: int) -> str:
    exports = {e: len({c.project_id for c in cs}) for e, cs in by_edit.items()}
    rated = {e: exports[e] / served[e] for e in by_edit if served.get(e, 0) >= min_served}
    if rated:
        return max(rated, key=lambda e: (rated[e], exports[e], e))
    return max(by_edit, key=lambda e: (_exporters(by_edit[e]), exports[e], e))


def apply_policy(cands: list[Candidate], policy: LabelPolicy = "export_rate", *,
                 served: Mapping[tuple[str, str], int] | None = None, min_served: int = 3) -> list[Example]:
    """Training rows from accepted examples under ``policy`` (see the module docstring)."""
    if policy not in LABEL_POLICIES:
        msg = f"unknown label policy {policy!r}; choose one of {', '.join(LABEL_POLICIES)}"
        raise ValueError(msg)
    served = served or {}
    by_intent: dict[str, dict[str, list[Candidate]]] = defaultdict(lambda: defaultdict(list))
    for c in cands:
        by_intent[c.prompt_norm][c.edit].append(c)
    rows: list[Example] = []
    for norm in sorted(by_intent):
        by_edit = by_intent[norm]
        if policy == "all_accepted":
            for edit in sorted(by_edit):
                n = _exporters(by_edit[edit])
                rows.extend(Example(c.event_id, c.prompt, edit, norm, n, c.label_source) for c in by_edit[edit])
            continue
        intent_served = {e: served.get((norm, e), 0) for e in by_edit}
        corrected = {e: cs for e, cs in by_edit.items() if any(c.label_source == "user_corrected" for c in cs)}
        if policy == "user_corrected_first" and corrected:
            chosen = max(corrected, key=lambda e: (_exporters(corrected[e]), e))
            source = "user_corrected"
        else:
            chosen = _pick_by_rate(by_edit, intent_served, min_served)
            source = Counter(c.label_source for c in by_edit[chosen]).most_common(1)[0][0]
        # The most common spelling of the intent is the prompt the student sees.
        prompt = Counter(c.prompt for c in by_edit[chosen]).most_common(1)[0][0]
        rows.append(Example(intent_id(norm), prompt, chosen, norm, _exporters(by_edit[chosen]), source))
    return rows


def candidates_from_examples(rows: Iterable[Example]) -> list[Candidate]:
    """Accepted examples from a plain (prompt, edit) file: each row is its own project and user,
    unless the file says how many users exported it (``exporters``)."""
    return [Candidate(r.id, r.prompt, r.prompt_norm, r.edit, r.id, r.id, r.label_source, r.exporters or 1)
            for r in rows]
