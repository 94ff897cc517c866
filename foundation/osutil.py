"""Small operating-system helpers every package shares: durable writes and process checks."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from foundation.failpoints import failpoint


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (the directory entry, not just the file)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_json(path: Path, obj: Any, *, crash_point: str | None = None) -> None:
    """Write JSON so that a reader (or a crash) sees the old file or the new one, never a mix.

    ``crash_point`` names a failpoint between the fsynced temp file and the rename (fault tests).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    if crash_point:
        failpoint(crash_point)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs and is not a zombie (a dead child not yet reaped counts as dead)."""
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own dead child
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True  # no /proc (macOS): trust kill(0)
