"""The teacher's prompt cache: (normalised prompt, teacher version) → edit, in SQLite.

Repeated prompts ("golden hour" typed by a thousand users) and replays after a crash cost nothing.
Guarantees: only successful labels are stored; the key includes the teacher version (model +
prompt version), so changing the model or the prompt never serves stale edits; writes are
committed before ``put`` returns (a process crash after it cannot lose the entry); several
processes may share one file (SQLite WAL, busy timeout). The WAL is not fsynced on every commit
(``synchronous=NORMAL``): a power loss may forget the last entries, which only costs asking the
teacher again, while an fsync per label (~6 ms here) blocked the streams labeler's event loop
for most of each second at 64 labels/s (``benchmarks/bench_labeler.py``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from schemas.edit import Edit
from schemas.text import normalise_prompt
from schemas.validation import validate_edit

# Writers in other processes hold the lock for milliseconds; 10 s only trips on a stuck disk.
_BUSY_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class CachedLabel:
    edit: Edit
    repairs: tuple[str, ...]


def cache_key(prompt: str, teacher_version: str) -> str:
    return hashlib.sha256(f"{teacher_version}\x00{normalise_prompt(prompt)}".encode()).hexdigest()


class LabelCache:
    """``get``/``put`` by prompt; ``path=None`` keeps the cache in memory for this process only."""

    def __init__(self, path: Path | None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path) if path else ":memory:", timeout=_BUSY_TIMEOUT_S,
                                   check_same_thread=False, isolation_level=None)
        if path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS labels (key TEXT PRIMARY KEY, teacher_version TEXT NOT NULL, "
            "prompt TEXT NOT NULL, edit TEXT NOT NULL, repairs TEXT NOT NULL, created REAL NOT NULL)"
        )

    def get(self, prompt: str, teacher_version: str) -> CachedLabel | None:
        row = self._db.execute("SELECT edit, repairs FROM labels WHERE key = ?",
                               (cache_key(prompt, teacher_version),)).fetchone()
        if row is None:
            return None
        return CachedLabel(validate_edit(json.loads(row[0])), tuple(json.loads(row[1])))

    def put(self, prompt: str, teacher_version: str, edit: Edit, repairs: tuple[str, ...]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?, ?, ?)",
            (cache_key(prompt, teacher_version), teacher_version, normalise_prompt(prompt),
             edit.canonical_json(), json.dumps(list(repairs)), time.time()),
        )

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM labels").fetchone()[0])

    def close(self) -> None:
        self._db.close()
