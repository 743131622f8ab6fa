"""SSH handshakes to one sshd, bounded and retried.

OpenSSH's default `MaxStartups 10:30:100` refuses 30% of new connections once 10 are
unauthenticated (100% at 100): a fan-out opening many connections to one host at once (many
operations, CI jobs in one process, a console and its swaps) gets connections reset before
authentication. So at most MAX_PER_SSHD handshakes to one address and port run at once in
this process, and a connection reset before authentication is retried with backoff.
"""

from __future__ import annotations

import asyncio
import random
import weakref
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncssh

MAX_PER_SSHD = 8  # below sshd's default start of refusals (10)
RETRIES = 5
BACKOFF_S = 0.2  # doubled each try, with jitter: 0.2 s ... 3.2 s, about 6 s in all

T = TypeVar("T")
# Per event loop: asyncio primitives belong to the loop they were first used in.
_slots: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, int], asyncio.Semaphore]
] = weakref.WeakKeyDictionary()


def _slot(address: str, port: int) -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    per_loop = _slots.setdefault(loop, {})
    key = (address, port)
    if key not in per_loop:
        per_loop[key] = asyncio.Semaphore(MAX_PER_SSHD)
    return per_loop[key]


def refused_at_startup(exc: BaseException) -> bool:
    """sshd closed or reset the connection before authentication (MaxStartups, or a busy
    sshd): worth another try, unlike a refused key or a wrong host key."""
    return isinstance(exc, asyncssh.ConnectionLost | ConnectionResetError | BrokenPipeError)


async def handshake(address: str, port: int, connect: Callable[[], Awaitable[T]]) -> T:
    """`connect()` within this sshd's handshake slots, retried while sshd refuses at startup;
    the last refusal is raised for the caller to explain."""
    for attempt in range(RETRIES + 1):
        try:
            async with _slot(address, port):
                return await connect()
        except (asyncssh.Error, OSError) as exc:
            if attempt == RETRIES or not refused_at_startup(exc):
                raise
        await asyncio.sleep(BACKOFF_S * 2**attempt * random.uniform(0.75, 1.25))
    raise AssertionError("unreachable")  # the loop returns or raises
