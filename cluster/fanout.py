"""Run one coroutine per item with bounded concurrency, yielding results as they finish.

One item's failure is its own result; it never cancels the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


async def fan_out(
    items: Iterable[T], work: Callable[[T], Awaitable[R]], *, limit: int
) -> AsyncIterator[tuple[T, R | Exception]]:
    """(item, result or exception) pairs in completion order; at most `limit` run at once.

    Leaving the loop early (or being cancelled) cancels the work still running.
    """
    gate = asyncio.Semaphore(limit)
    done: asyncio.Queue[tuple[T, R | Exception]] = asyncio.Queue()

    async def one(item: T) -> None:
        async with gate:
            try:
                result: R | Exception = await work(item)
            except Exception as exc:  # noqa: BLE001 - each item's failure is reported, not raised
                result = exc
        done.put_nowait((item, result))

    tasks = [asyncio.create_task(one(item)) for item in items]
    try:
        for _ in tasks:
            yield await done.get()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
