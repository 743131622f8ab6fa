"""The monitor deployment's methods run on the replica's event loop, never in Serve's thread
pool, so concurrent callers cannot interleave transactions on its SQLite connection."""

from __future__ import annotations

import asyncio
import inspect
import time
from pathlib import Path

from serving.monitor.deployment import Monitor


async def start_monitor(tmp_path: Path) -> Monitor:
    cls = Monitor.func_or_class  # the class under @serve.deployment
    monitor = cls.__new__(cls)
    await monitor.__init__(app="m", state_dir=str(tmp_path))
    return monitor


def test_every_method_serve_calls_is_async() -> None:
    cls = Monitor.func_or_class
    for name in ("register", "record", "feedback", "summary", "__call__"):
        assert inspect.iscoroutinefunction(getattr(cls, name)), name


async def test_concurrent_callers_never_collide(tmp_path: Path) -> None:
    monitor = await start_monitor(tmp_path)
    try:
        await monitor.register("1", "classifier", [0, 1], None)

        async def caller(k: int) -> None:
            for i in range(20):
                rid = f"c{k}-{i}"
                await monitor.record([(rid, "1", "live", 1, [0.2, 0.8], time.time())])
                await monitor.feedback([(rid, 1)])
                await monitor.summary()

        await asyncio.gather(*(caller(k) for k in range(10)))
        summary = await monitor.summary()
        assert summary["versions"]["1"]["labelled_total"] == 200
    finally:
        monitor._exporter.cancel()
        monitor.tracker.store.close()
