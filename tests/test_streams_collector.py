"""The worker's garbage-collection policy (streams/collector.py): frozen survivors, cycles reclaimed on the clock."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from streams import collector


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def garbage_cycle() -> weakref.ref[Node]:
    """Two objects that refer to each other and to nothing else: only the collector frees them."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture(autouse=True)
def restore_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.enable()
    gc.unfreeze()  # what the policy froze is collectable again for the rest of the test session
    gc.set_threshold(*threshold)


def test_install_freezes_what_is_alive_and_raises_the_young_threshold() -> None:
    gc.unfreeze()
    collector.install()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == collector.YOUNG_THRESHOLD
    assert gc.get_count()[0] < 1_000  # freezing starts the young generation over


def test_a_cycle_frozen_while_alive_is_reclaimed_by_the_full_collection() -> None:
    a, b = Node(), Node()
    a.other, b.other = b, a
    ref = weakref.ref(a)
    gc.freeze()
    del a, b
    gc.collect()
    assert ref() is not None  # frozen: a routine collection does not see it (the cost the policy saves)
    assert collector.full_collection() >= 2
    assert ref() is None
    assert gc.get_freeze_count() > 0  # the survivors are frozen again


def test_the_clock_freezes_survivors_and_reclaims_garbage_cycles() -> None:
    async def scenario() -> tuple[int, bool]:
        task = asyncio.create_task(collector.run(freeze_every_s=0.01, full_every_s=0.2))
        try:
            gc.unfreeze()
            gc.disable()  # no collection driven by allocations: only the clock's full pass can free the cycle
            ref = garbage_cycle()
            frozen = 0
            for _ in range(300):  # up to 3 s
                await asyncio.sleep(0.01)
                frozen = max(frozen, gc.get_freeze_count())
                if ref() is None:
                    break
            return frozen, ref() is None
        finally:
            task.cancel()

    frozen, reclaimed = asyncio.run(scenario())
    assert frozen > 0
    assert reclaimed
