"""The one uvicorn configuration ``toneflow serve`` and the test server share: uvloop and httptools.

Why: on this 2-core box the default asyncio loop + h11 parser spent more CPU per request than the
int8 student's forward pass; uvloop (libuv) and httptools (the C parser of Node's http-parser) cut
that overhead (``benchmarks/bench_serving.py http``, figures in ``docs/benchmarks.md``).
"""

from __future__ import annotations

from typing import Any


def uvicorn_config(app: Any, host: str, port: int, *, access_log: bool = False) -> Any:
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, loop="uvloop", http="httptools", log_level="warning",
                          access_log=access_log, backlog=2048)
