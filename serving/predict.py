"""``toneflow predict``: the current (or a named) student's edits for one prompt or a JSONL file.

Files are read whole, validated line by line (``{"id", "prompt"}``; a bad line is an error naming
its number, before any prediction), predicted in batches of ``BATCH`` and written atomically
(temp file + rename), so an interrupted run never leaves a half-written output.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from schemas.events import MAX_PROMPT_CHARS
from serving.exceptions import PredictInputError

BATCH = 128


def read_prompts(path: Path) -> list[tuple[Any, str]]:
    rows: list[tuple[Any, str]] = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                msg = f"{path}:{number}: not JSON ({err.msg}); each line must be {{\"id\": ..., \"prompt\": \"...\"}}"
                raise PredictInputError(msg) from None
            if not isinstance(obj, dict) or "id" not in obj or not isinstance(obj.get("prompt"), str):
                msg = f"{path}:{number}: needs an \"id\" and a string \"prompt\""
                raise PredictInputError(msg)
            prompt = obj["prompt"]
            if not prompt.strip() or len(prompt) > MAX_PROMPT_CHARS:
                msg = f"{path}:{number}: prompt must be 1..{MAX_PROMPT_CHARS} non-blank characters"
                raise PredictInputError(msg)
            rows.append((obj["id"], prompt))
    return rows


def predict_file(student: Any, rows: list[tuple[Any, str]], dst: Path) -> int:
    """Write one ``{"id", "prompt", "edit", "model"}`` line per row (from ``read_prompts``); returns the count."""
    model = {"kind": "student", "name": student.name, "version": student.version}
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    with tmp.open("w", encoding="utf-8") as out:
        for i in range(0, len(rows), BATCH):
            chunk = rows[i:i + BATCH]
            for (row_id, prompt), edit in zip(chunk, student.predict([p for _, p in chunk]), strict=True):
                out.write(json.dumps({"id": row_id, "prompt": prompt, "edit": edit.canonical_dict(),
                                      "model": model}) + "\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, dst)
    return len(rows)
