"""The one uvicorn configuration ``toneflow serve`` and the test server share: uvloop and httptools.

Why: on this 2-core box the default asyncio loop + h11 parser spent more CPU per request than the
int8 student's forward pass; uvloop (libuv) and httptools (the C parser of Node's http-parser) cut
that overhead (``benchmarks/bench_serving.py http``, figures in ``docs/benchmarks.md``).

``tune_interpreter`` sets the two interpreter knobs the server runs with (see its docstring).
"""

from __future__ import annotations

import gc
import sys
from typing import Any

# A forward-pass thread that finished waits for the GIL until the event loop lets go of it, at the
# latest after this interval (Python's default is 5 ms). Under 32 connections the loop is busy in
# bursts, so the finished pass, and the cores it frees, wait; 1 ms moved wrk's requests/s +6% and
# CPU per request −6% in alternating runs (docs/benchmarks.md "Serving speed, round 7").
SWITCH_INTERVAL_S = 0.001


def uvicorn_config(app: Any, host: str, port: int, *, access_log: bool = False) -> Any:
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, loop="uvloop", http="httptools", log_level="warning",
                          access_log=access_log, backlog=2048)


def tune_interpreter() -> None:
    """The GIL switch interval (``SWITCH_INTERVAL_S``) and a garbage collector that skips what is loaded.

    ``gc.freeze`` moves every object alive now (the imported libraries, the loaded models: ~60,000
    objects) out of the collector's generations: a full collection over them cost ~75 ms on this
    box, every request stalled meanwhile, and none of them is ever garbage. Called once the first
    models are loaded and again after each hot reload (``serving.models.ModelHolder``). Process-wide
    on purpose: it is the serving process.
    """
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    refreeze()


def refreeze() -> None:
    """Collect everything, frozen objects included, then freeze what is still alive.

    A dropped student leaves reference cycles (~480 objects each, its weights reachable from them):
    frozen, they would never be collected, and every promotion would leak the model it replaced.
    Unfreezing first lets this collection free them; one full collection per load, off the hot path.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
