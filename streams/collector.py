"""The worker's garbage-collection policy: survivors are frozen every second, cycles reclaimed every ten minutes.

What the worker keeps alive is its join table (every project's labels and exports, until the TTL)
and bounded caches (``streams.codec.Produced``, the canonical edits of ``schemas.edit``): objects
that live for minutes or hours and hold no reference cycles. CPython's collector is triggered by
allocation counts and re-traverses every object that survived since its last pass, so a growing
table was traversed again and again while almost nothing was collected: in
``benchmarks/bench_pipeline.py`` (51,703 events) its passes took ~1 s of the main thread (25 young
ones and a middle-generation one of 0.57 s) and found 0 to 66 objects each (docs/benchmarks.md).

So the collector is not driven by allocations while the worker runs:
  * ``install`` (at start-up, after the teacher is loaded): everything alive is frozen
    (``gc.freeze``: exempt from collection, still freed by reference counting as usual), and a
    young collection needs ``YOUNG_THRESHOLD`` new objects, which traffic does not reach within one
    tick (~25 per event stayed alive in that run: ~250,000 a second at 10,000 events/s);
  * ``run`` (a task beside the stages): every ``FREEZE_EVERY_S`` what survived is frozen too, so no
    object is traversed by a routine pass; a flood of new objects within one tick still triggers one;
  * every ``FULL_EVERY_S`` the frozen objects are released and collected in full, then frozen again:
    any cycle that became garbage is reclaimed within that time. The pass pauses the event loop for
    the size of the heap (0.3-1.1 s on the benchmark's): under 0.2% of ten minutes.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

log = logging.getLogger(__name__)

FREEZE_EVERY_S = 1.0
FULL_EVERY_S = 600.0
YOUNG_THRESHOLD = 1_000_000


def install() -> None:
    """Freeze what is alive now (start-up: the teacher, its encoder) and raise the young threshold."""
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 20, 100)


def full_collection() -> int:
    """Release the frozen objects, collect everything, freeze the survivors; returns what was collected."""
    started = time.perf_counter()
    gc.unfreeze()
    try:
        collected = gc.collect()
    finally:
        gc.freeze()
    log.info("full garbage collection: %d objects collected in %.0f ms, %d frozen",
             collected, (time.perf_counter() - started) * 1e3, gc.get_freeze_count())
    return collected


async def run(freeze_every_s: float = FREEZE_EVERY_S, full_every_s: float = FULL_EVERY_S) -> None:
    """Freeze survivors every ``freeze_every_s``, collect in full every ``full_every_s``; until cancelled."""
    last_full = time.monotonic()
    while True:
        await asyncio.sleep(freeze_every_s)
        if time.monotonic() - last_full >= full_every_s:
            full_collection()
            last_full = time.monotonic()
        else:
            gc.freeze()
