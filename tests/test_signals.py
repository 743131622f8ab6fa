"""SIGTERM and SIGHUP stop a headless command the way Ctrl-C does: cleanup runs first."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from console.signals import Stopped, cancelled_by_signals


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
async def test_a_stopping_signal_cancels_the_work_and_its_cleanup_finishes(
    sig: signal.Signals,
) -> None:
    cleaned: list[str] = []

    async def work() -> int:
        try:
            await asyncio.sleep(30)
        finally:
            # The cleanup takes a while (a swap putting the old version back); a second signal
            # arriving meanwhile must not cut it short.
            os.kill(os.getpid(), sig)
            await asyncio.sleep(0.2)
            cleaned.append("restored")
        return 0

    asyncio.get_running_loop().call_later(0.1, os.kill, os.getpid(), sig)
    with pytest.raises(Stopped) as info:
        await cancelled_by_signals(work())
    assert cleaned == ["restored"]
    assert info.value.name == sig.name and info.value.exit_code == 128 + int(sig)


async def test_without_a_signal_the_work_answers_as_usual() -> None:
    async def work() -> int:
        await asyncio.sleep(0.01)
        return 4

    assert await cancelled_by_signals(work()) == 4
