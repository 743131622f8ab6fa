"""The collector: every interval, scrape each node of an app's cluster(s) through SSH port
forwards and ask the app's monitor for accuracy; yield one frame per interval.

A node that stops answering is marked stale within two intervals while the others keep
updating; its forward is reopened on later ticks, so it recovers by itself.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx

from cluster.errors import MlopsError, TransportError
from cluster.events import Event
from cluster.inventory import App, Host
from cluster.provision.topology import RayCluster
from cluster.serve.config import monitor_route
from cluster.telemetry.aggregate import version_stats
from cluster.telemetry.prom import parse
from cluster.telemetry.window import NodeWindow, Scrape, index
from cluster.transport import Connections

HISTORY = 600  # frames kept for sparklines: 10 minutes at 1 Hz


@dataclass(frozen=True)
class TelemetryFrame(Event):
    """One interval's figures for one app: per version, plus node freshness and the monitor."""

    app: str
    at: float
    window_s: float
    versions: dict[str, dict[str, Any]]
    nodes: dict[str, str]
    monitor: dict[str, Any] | None
    errors: tuple[str, ...] = ()


@dataclass
class _Node:
    host: Host
    cluster: RayCluster
    window: NodeWindow
    url: str | None = None
    stack: AsyncExitStack | None = None
    stale: bool = False
    last_error: str = ""


@dataclass
class Collector:
    """Scrapes the nodes of every cluster an app runs on."""

    connections: Connections
    app: App
    clusters: list[RayCluster]
    interval: float = 1.0
    window_s: float = 10.0
    history: deque[TelemetryFrame] = field(default_factory=lambda: deque(maxlen=HISTORY))

    async def frames(self, duration: float | None = None) -> AsyncIterator[TelemetryFrame]:
        keep = int(self.window_s / self.interval) + 2
        nodes = [_Node(h, c, NodeWindow(keep)) for c in self.clusters for h in c.hosts]
        loop = asyncio.get_running_loop()
        start = loop.time()
        limits = httpx.Limits(max_connections=len(nodes) + 4)
        async with httpx.AsyncClient(timeout=self.interval * 0.8, limits=limits) as client:
            try:
                tick = 0
                while duration is None or loop.time() - start < duration:
                    tick_start = loop.time()
                    await asyncio.gather(*(self._scrape(client, n, tick) for n in nodes))
                    monitor = await self._monitor(client)
                    frame = self._frame(nodes, monitor)
                    self.history.append(frame)
                    yield frame
                    tick += 1
                    await asyncio.sleep(max(0.0, self.interval - (loop.time() - tick_start)))
            finally:
                for n in nodes:
                    if n.stack is not None:
                        await n.stack.aclose()

    async def _scrape(self, client: httpx.AsyncClient, node: _Node, tick: int) -> None:
        try:
            if node.url is None:
                if node.window.failures and tick % 3:
                    return  # a dead node is retried every third tick, not hammered
                node.stack = AsyncExitStack()
                transport = await self.connections.get(node.host.name)
                local = await node.stack.enter_async_context(
                    transport.forward(node.host.address, node.host.ray.metrics)
                )
                node.url = f"http://{local[0]}:{local[1]}/metrics"
            response = await client.get(node.url)
            response.raise_for_status()
            samples = parse(response.text)
        except (httpx.HTTPError, MlopsError, OSError, ValueError) as exc:
            node.window.failures += 1
            node.last_error = (
                exc.reason if isinstance(exc, TransportError) else f"{type(exc).__name__}: {exc}"
            )
            if isinstance(exc, TransportError | OSError):
                await self._drop_forward(node)
            self.connections.forget(node.host.name)
            return
        node.window.add(Scrape(time.time(), index(samples)))

    async def _drop_forward(self, node: _Node) -> None:
        if node.stack is not None:
            await node.stack.aclose()
        node.stack, node.url = None, None

    async def _monitor(self, client: httpx.AsyncClient) -> dict[str, Any] | None:
        """The app's /monitor summary, through the first cluster's head."""
        cluster = self.clusters[0]
        head = cluster.head
        try:
            transport = await self.connections.get(head.name)
            async with transport.forward(head.address, head.ray.serve_http) as (host, port):
                response = await client.get(f"http://{host}:{port}{monitor_route(self.app.route)}")
            return response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, MlopsError, OSError, ValueError):
            return None

    def _frame(self, nodes: list[_Node], monitor: dict[str, Any] | None) -> TelemetryFrame:
        now = time.time()
        freshness: dict[str, str] = {}
        errors = []
        for n in nodes:
            stale = n.window.last_ok is None or now - n.window.last_ok > 2 * self.interval + 0.5
            freshness[n.host.name] = "stale" if stale else "ok"
            if stale and n.last_error:
                errors.append(f"{n.host.name}: {n.last_error}")
        windows = {n.host.name: n.window for n in nodes if freshness[n.host.name] == "ok"}
        stats = version_stats(self.app.name, windows, self.window_s, now)
        return TelemetryFrame(
            self.app.name,
            now,
            self.window_s,
            {v: s.to_dict() for v, s in sorted(stats.items())},
            freshness,
            monitor,
            tuple(errors),
        )
