"""Named crash points for fault tests (docs/reliability.md §8).

``TONEFLOW_FAILPOINTS=sink.after_write_before_ack`` makes the process die with ``os._exit(137)``
(like SIGKILL: no cleanup, no commit) when it reaches that point; ``name:raise`` raises
``FailpointError`` there instead, to test what an exception inside an agent does; ``name:hang``
blocks the calling thread for good (an event loop that never comes back: the stall the liveness
watchdog must see, streams/liveness.py). Off by default; costs one set lookup when off.
"""

from __future__ import annotations

import os
import sys
import time


class FailpointError(RuntimeError):
    """Raised by a failpoint armed with ``:raise``."""


def _armed() -> dict[str, str]:
    out = {}
    for item in os.environ.get("TONEFLOW_FAILPOINTS", "").split(","):
        name, _, action = item.strip().partition(":")
        if name:
            out[name] = action or "exit"
    return out


_ARMED = _armed()


def failpoint(name: str) -> None:
    action = _ARMED.get(name)
    if action is None:
        return
    if action == "raise":
        msg = f"failpoint {name} raised"
        raise FailpointError(msg)
    if action == "hang":
        print(f"failpoint {name}: hanging", file=sys.stderr, flush=True)
        while True:
            time.sleep(3600)
    print(f"failpoint {name}: exiting with 137", file=sys.stderr, flush=True)
    os._exit(137)
