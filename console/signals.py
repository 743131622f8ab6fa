"""SIGTERM and SIGHUP stop a command the way Ctrl-C does: its task is cancelled, so a swap
puts the old version back and records the interruption before the process exits.

CI cancels a job with SIGTERM, and a closed SSH session to a bastion sends SIGHUP; without
this, either would kill the process in the middle of a canary with no one restoring it.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable

STOPPING = (signal.SIGTERM, signal.SIGHUP)


class Stopped(Exception):
    """The command was cancelled by a signal; `exit_code` is the shell's 128 + its number."""

    def __init__(self, sig: signal.Signals) -> None:
        super().__init__(f"stopped by {sig.name}")
        self.name = sig.name
        self.exit_code = 128 + int(sig)


async def cancelled_by_signals(work: Awaitable[int]) -> int:
    """Await `work`; SIGTERM or SIGHUP cancels it (cleanup runs as for Ctrl-C), then Stopped."""
    if threading.current_thread() is not threading.main_thread():
        return await work  # only the main thread gets signals (main() run from a thread)
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    received: list[signal.Signals] = []

    def stop(sig: signal.Signals) -> None:
        # A repeated signal must not cancel the cleanup the first one started.
        if not received:
            received.append(sig)
            task.cancel()

    for sig in STOPPING:
        loop.add_signal_handler(sig, stop, sig)
    try:
        return await task
    except asyncio.CancelledError:
        if received and not _cancelling():
            raise Stopped(received[0]) from None
        raise
    finally:
        for sig in STOPPING:
            loop.remove_signal_handler(sig)


def _cancelling() -> bool:
    """Whether the caller itself is being cancelled (Ctrl-C), not only `work`."""
    current = asyncio.current_task()
    return current is not None and current.cancelling() > 0
