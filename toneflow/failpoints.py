"""Named crash points for fault tests (reliability.md §9).

``TONEFLOW_FAILPOINTS=sink.after_write_before_commit`` makes the process die with ``os._exit(137)``
(like SIGKILL: no cleanup, no commit) the first time it reaches that point. Off by default; costs
one set lookup when off.
"""

from __future__ import annotations

import os
import sys

_ARMED = frozenset(p.strip() for p in os.environ.get("TONEFLOW_FAILPOINTS", "").split(",") if p.strip())


def failpoint(name: str) -> None:
    if name in _ARMED:
        print(f"failpoint {name}: exiting with 137", file=sys.stderr, flush=True)
        os._exit(137)
