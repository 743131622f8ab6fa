"""A bounded HTTP load generator that counts every response (tests and benchmarks)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class LoadResult:
    """Every request's fate: statuses, versions answered, failures with reasons, latencies."""

    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    failed_at: list[float] = field(default_factory=list)  # time.time() of each failure
    latencies_s: list[float] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failures)

    def fail(self, reason: str) -> None:
        self.failures.append(reason)
        self.failed_at.append(time.time())


async def run_load(
    url: str,
    body: dict[str, Any],
    *,
    concurrency: int,
    total: int | None = None,
    stop: asyncio.Event | None = None,
    max_seconds: float = 120.0,
    timeline: list[tuple[float, str]] | None = None,
    result: LoadResult | None = None,
    samples: list[tuple[float, float]] | None = None,
    pause_s: float = 0.0,
    client_options: dict[str, Any] | None = None,
) -> LoadResult:
    """Send POSTs from `concurrency` workers until `total` are sent or `stop` is set.

    Bounded both ways: by count or event, and by `max_seconds` whatever happens. `pause_s`
    between a worker's requests keeps a light load light (the machine has 2 cores).
    `client_options`: more httpx.AsyncClient options (HTTPS: cluster/tls/client.py).
    """
    result = LoadResult() if result is None else result  # pass one in to watch progress
    deadline = time.monotonic() + max_seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(timeout=30, limits=limits, **(client_options or {})) as client:

        async def worker() -> None:
            while time.monotonic() < deadline:
                if pause_s and result.sent:
                    await asyncio.sleep(pause_s)
                if total is not None and result.sent >= total:
                    return
                if stop is not None and stop.is_set():
                    return
                result.sent += 1
                t0 = time.perf_counter()
                try:
                    response = await client.post(url, json=body)
                except httpx.HTTPError as exc:
                    result.fail(f"{type(exc).__name__}: {exc}")
                    continue
                took = time.perf_counter() - t0
                result.latencies_s.append(took)
                if samples is not None:
                    samples.append((time.time(), took))
                result.statuses[response.status_code] += 1
                if response.status_code != 200:
                    result.fail(f"HTTP {response.status_code}: {response.text[:200]}")
                    continue
                try:
                    version = str(response.json()["version"])
                except (ValueError, KeyError, TypeError):
                    result.fail(f"HTTP 200 without a version: {response.text[:200]}")
                    continue
                result.versions[version] += 1
                if timeline is not None:
                    timeline.append((time.time(), version))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return result
