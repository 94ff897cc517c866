"""Training rows and the files they come from.

One row = one (prompt, edit) example with its provenance. Files are JSONL (one object per line)
or Parquet with at least ``prompt`` and ``edit`` columns; ``edit`` may be a JSON object or JSON
text. Optional columns: ``id``, ``exporters`` (distinct users who exported this edit for this
intent; drives r_3/r_5), ``label_source``, ``augmented``, ``user_id``, ``project_id``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.edit import Edit
from schemas.exceptions import RepairFailed, SchemaViolation
from schemas.text import normalise_prompt
from schemas.validation import repair_edit, validate_edit
from trainer.exceptions import DataError


@dataclass(frozen=True)
class Example:
    """One training/evaluation example. ``edit`` is canonical JSON text (hashable, comparable)."""

    id: str
    prompt: str
    edit: str
    prompt_norm: str = ""
    exporters: int | None = None
    label_source: str = "teacher"
    augmented: bool = False
    origin: str = ""  # for augmented rows: the prompt it was derived from

    @property
    def edit_obj(self) -> Edit:
        return validate_edit(self.edit)

def make_example(prompt: str, edit: Edit | dict[str, Any] | str, *, id: str | None = None,  # noqa: A002
                 **extra: Any) -> Example:
    """Build an Example, canonicalising the edit and deriving a stable id from the content."""
    canonical = validate_edit(json.loads(edit) if isinstance(edit, str) else edit).canonical_json()
    norm = normalise_prompt(prompt)
    if id is None:
        id = hashlib.sha256(f"{norm}\x00{canonical}".encode()).hexdigest()[:16]  # noqa: A001
    return Example(id=str(id), prompt=prompt, edit=canonical, prompt_norm=norm, **extra)


def _read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        msg = f"no such file: {path}"
        raise DataError(msg)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    records = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                msg = f"{path}:{lineno}: not JSON ({err.msg}); expected one object per line"
                raise DataError(msg) from None
    return records


def _edit_of(raw: Any, where: str) -> Edit:
    try:
        return validate_edit(json.loads(raw) if isinstance(raw, str) else raw)
    except (SchemaViolation, json.JSONDecodeError) as err:
        msg = f"{where}: invalid edit ({err})"
        raise DataError(msg) from None


def read_examples(path: str | Path) -> list[Example]:
    """Read (prompt, edit) pairs from JSONL or Parquet; rows without an edit (teacher failures) skipped."""
    path = Path(path)
    out = []
    for i, rec in enumerate(_read_records(path)):
        if "prompt" not in rec:
            msg = f"{path}: row {i} has no 'prompt' column; expected prompt and edit"
            raise DataError(msg)
        if rec.get("edit") is None:
            continue
        edit = _edit_of(rec["edit"], f"{path} row {i}")
        extra = {k: rec[k] for k in ("exporters", "label_source", "augmented", "origin") if rec.get(k) is not None}
        out.append(make_example(rec["prompt"], edit, id=rec.get("id") or rec.get("event_id"), **extra))
    if not out:
        msg = f"{path}: no usable (prompt, edit) rows"
        raise DataError(msg)
    return out


@dataclass
class EditFile:
    """An eval file: edits by id, plus how many lines needed repair or could not be used."""

    edits: dict[str, Edit]
    exporters: dict[str, int | None] = field(default_factory=dict)
    repaired: int = 0
    invalid: int = 0


def read_edit_file(path: str | Path, *, strict: bool) -> EditFile:
    """Read ``{"id": ..., "edit": {...}}`` lines (other keys ignored).

    References are ``strict`` (an invalid edit is a DataError: the ground truth must be right);
    predictions are repaired with the schemas policy and an unrepairable one scores as ``{}``.
    """
    path = Path(path)
    out = EditFile({})
    for i, rec in enumerate(_read_records(path)):
        if "id" not in rec:
            msg = f"{path}: line {i + 1} has no 'id'"
            raise DataError(msg)
        key = str(rec["id"])
        if key in out.edits:
            msg = f"{path}: duplicate id {key!r}"
            raise DataError(msg)
        raw = rec.get("edit") or {}
        if strict:
            out.edits[key] = _edit_of(raw, f"{path} id {key}")
        else:
            try:
                result = repair_edit(raw)
            except RepairFailed:
                out.invalid += 1
                out.edits[key] = Edit()
                continue
            out.repaired += result.repaired
            out.edits[key] = result.edit
        out.exporters[key] = rec.get("exporters")
    return out


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write rows as JSONL via a temp file + rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


