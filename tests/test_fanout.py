"""fan_out: bounded concurrency, results as they finish, one failure never stops the rest."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

from cluster.fanout import fan_out


async def test_bounded_and_isolated() -> None:
    running = peak = 0

    async def work(i: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01 * (i % 3))
        running -= 1
        if i == 4:
            raise ValueError("host 4 broke")
        return i * 10

    results = {item: r async for item, r in fan_out(range(20), work, limit=5)}
    assert peak == 5
    assert len(results) == 20
    assert isinstance(results[4], ValueError)
    assert all(results[i] == i * 10 for i in range(20) if i != 4)


async def test_leaving_early_cancels_the_rest() -> None:
    cancelled: list[int] = []

    async def work(i: int) -> int:
        try:
            await asyncio.sleep(0 if i == 0 else 10)
        except asyncio.CancelledError:
            cancelled.append(i)
            raise
        return i

    async with aclosing(fan_out(range(4), work, limit=4)) as results:
        async for item, _ in results:
            assert item == 0
            break
    assert sorted(cancelled) == [1, 2, 3]
