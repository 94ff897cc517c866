"""The labeler's bounded teacher calls: places handed out in order, never more than the bound."""

from __future__ import annotations

import asyncio

from streams.labeler import Permits


def test_permits_bound_and_order():
    async def scenario() -> list[str]:
        permits = Permits(3)
        order: list[str] = []

        async def user(name: str, n: int, hold: float) -> None:
            await permits.take(n)
            order.append(name)
            assert permits.free >= 0
            await asyncio.sleep(hold)
            permits.give(n)

        tasks = [asyncio.create_task(user("a", 2, 0.05)), asyncio.create_task(user("b", 3, 0.01)),
                 asyncio.create_task(user("c", 1, 0.01))]
        await asyncio.sleep(0.01)
        assert order == ["a"]  # b needs 3 and waits; c (1 would fit) queues behind b, not past it
        await asyncio.gather(*tasks)
        assert permits.free == 3
        return order

    assert asyncio.run(scenario()) == ["a", "b", "c"]


def test_cancelled_waiter_gives_nothing_away():
    async def scenario() -> int:
        permits = Permits(1)
        await permits.take(1)
        waiter = asyncio.create_task(permits.take(1))
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.sleep(0)
        permits.give(1)
        return permits.free

    assert asyncio.run(scenario()) == 1
