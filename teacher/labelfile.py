"""Labelling a JSON Lines file of prompts, resumably (what ``toneflow teach --input`` runs).

Input lines: ``{"id": ..., "prompt": ...}``. Output lines: ``{"id", "prompt", "edit", "teacher",
"latency_ms", "prompt_tokens", "completion_tokens", "cost", "cached", "repairs", "error_kind",
"error"}``.

Guarantees:
1. Resumable: ids already in the output are skipped, so rerunning after a crash or Ctrl-C labels
   only what is missing. A torn last line (the process died mid-write) is cut off first.
2. Each batch is appended, flushed and fsynced before the next starts: at most one batch of work
   is redone after a crash, and no line is ever half-written into the middle of the file.
3. No id appears twice in the output (repeated ids in the input are labelled once).
4. Permanent failures are written (``edit: null`` + reason) and so not retried; transient ones
   (teacher unavailable, spend limit) are not written, so the next run retries them.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from teacher.base import Label, Teacher
from teacher.exceptions import TeacherError


class LabelFileError(TeacherError):
    """An input or output file is malformed."""


@dataclass
class FileRun:
    total: int = 0  # distinct ids in the input
    skipped: int = 0  # already in the output
    labelled: int = 0
    failed: int = 0  # written with an error (permanent)
    deferred: int = 0  # transient failures, left for the next run
    cost: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    deferred_reasons: dict[str, int] = field(default_factory=dict)


def read_prompts(stream: IO[str], name: str) -> Iterator[tuple[str, str]]:
    """(id, prompt) per line; blank lines skipped; a bad line raises naming file and line."""
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            rid, prompt = record["id"], record["prompt"]
        except (json.JSONDecodeError, KeyError, TypeError):
            msg = f'{name}:{number}: expected a JSON object with "id" and "prompt", got {line.strip()[:80]!r}'
            raise LabelFileError(msg) from None
        if not isinstance(prompt, str) or not prompt.strip():
            msg = f"{name}:{number}: prompt must be a non-empty string"
            raise LabelFileError(msg)
        yield str(rid), prompt


def done_ids(output: Path) -> set[str]:
    """Ids already labelled in ``output``; cuts a torn final line so appends start clean."""
    if not output.exists():
        return set()
    data = output.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with output.open("r+b") as fh:
            fh.truncate(cut)
        data = data[:cut]
    ids = set()
    for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if line.strip():
            try:
                ids.add(str(json.loads(line)["id"]))
            except (json.JSONDecodeError, KeyError, TypeError):
                msg = f"{output}:{number}: not a label line; fix or move the file before resuming"
                raise LabelFileError(msg) from None
    return ids


def output_record(rid: str, label: Label) -> dict[str, Any]:
    return {"id": rid, **label.as_dict()}


async def label_file(teacher: Teacher, items: list[tuple[str, str]], output: Path, batch_size: int,
                     progress: Callable[[int], None] | None = None) -> FileRun:
    """Label ``items`` (id, prompt) not yet in ``output``, appending a batch at a time."""
    run = FileRun()
    seen: set[str] = set()
    unique = []
    for rid, prompt in items:
        if rid not in seen:
            seen.add(rid)
            unique.append((rid, prompt))
    run.total = len(unique)
    done = done_ids(output)
    todo = [(rid, p) for rid, p in unique if rid not in done]
    run.skipped = run.total - len(todo)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("a", encoding="utf-8") as fh:
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            labels = await teacher.label([p for _, p in batch])
            lines = []
            for (rid, _), lab in zip(batch, labels, strict=True):
                run.cost += lab.cost
                if lab.ok:
                    run.labelled += 1
                    run.latencies_ms.append(lab.latency_ms)
                elif lab.retryable:
                    run.deferred += 1
                    run.deferred_reasons[lab.error_kind or "?"] = run.deferred_reasons.get(lab.error_kind or "?", 0) + 1
                    continue
                else:
                    run.failed += 1
                lines.append(json.dumps(output_record(rid, lab), ensure_ascii=False) + "\n")
            fh.writelines(lines)
            fh.flush()
            os.fsync(fh.fileno())
            if progress is not None:
                progress(len(batch))
    return run


def run_label_file(teacher: Teacher, items: list[tuple[str, str]], output: Path, batch_size: int,
                   progress: Callable[[int], None] | None = None) -> FileRun:
    async def main() -> FileRun:
        try:
            return await label_file(teacher, items, output, batch_size, progress)
        finally:
            await teacher.aclose()

    return asyncio.run(main())
