"""The collector: every interval, scrape each node of an app's cluster(s) through SSH port
forwards and ask the app's monitor for accuracy; yield one frame per interval.

A node that stops answering is marked stale within two intervals while the others keep
updating; its connection and forward are reopened on later ticks, so it recovers by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncGenerator
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
from cluster.telemetry.prom import parse_index
from cluster.telemetry.window import NodeWindow, Scrape
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
    monitor: dict[str, Any] | None  # the app's monitor when it runs on one cluster
    errors: tuple[str, ...] = ()
    monitors: dict[str, dict[str, Any]] = field(default_factory=dict)  # per cluster (edge fleets)


@dataclass
class _Node:
    host: Host
    cluster: RayCluster
    window: NodeWindow
    url: str | None = None
    stack: AsyncExitStack | None = None
    opening: asyncio.Task[str] | None = None  # a forward being opened, off the tick's path
    last_error: str = ""


@dataclass
class Collector:
    """Scrapes the nodes of every cluster an app runs on.

    No node can hold up the others: a scrape is one HTTP GET bounded by the interval, and an
    SSH connection or forward is (re)opened in the background while the other nodes go on.
    """

    connections: Connections
    app: App
    clusters: list[RayCluster]
    interval: float = 1.0
    window_s: float = 10.0
    history: deque[TelemetryFrame] = field(default_factory=lambda: deque(maxlen=HISTORY))

    async def frames(self, duration: float | None = None) -> AsyncGenerator[TelemetryFrame, None]:
        keep = int(self.window_s / self.interval) + 2
        nodes = [_Node(h, c, NodeWindow(keep)) for c in self.clusters for h in c.hosts]
        loop = asyncio.get_running_loop()
        start = loop.time()
        timeout = httpx.Timeout(self.interval * 0.8)
        # One small client per node: a single pool of hundreds of connections costs its
        # bookkeeping on every request (httpcore scans the pool), one per node costs nothing.
        clients = {
            n.host.name: httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=2))
            for n in nodes
        }
        async with contextlib.AsyncExitStack() as stack:
            for one in clients.values():
                await stack.enter_async_context(one)
            try:
                tick = 0
                while duration is None or loop.time() - start < duration:
                    tick_start = loop.time()
                    # Every node and monitor at once, each within the interval: a slow one
                    # never delays the others' figures.
                    scrapes = [self._scrape_within(clients[n.host.name], n, tick) for n in nodes]
                    asks = [self._monitor_within(clients[c.head.name], c) for c in self.clusters]
                    results = await asyncio.gather(*scrapes, *asks)
                    monitors = results[len(nodes) :]
                    frame = self._frame(
                        nodes, dict(zip((c.id for c in self.clusters), monitors, strict=True))
                    )
                    self.history.append(frame)
                    yield frame
                    tick += 1
                    await asyncio.sleep(max(0.0, self.interval - (loop.time() - tick_start)))
            finally:
                for n in nodes:
                    await self._drop_forward(n)

    async def _scrape_within(self, client: httpx.AsyncClient, node: _Node, tick: int) -> None:
        try:
            await asyncio.wait_for(self._scrape(client, node, tick), self.interval * 0.9)
        except TimeoutError:
            self._failed(node, f"no answer within {self.interval * 0.9:g}s")
            if node.opening is None:  # a connection still being opened goes on in the background
                await self._drop_forward(node)

    async def _monitor_within(
        self, client: httpx.AsyncClient, cluster: RayCluster
    ) -> dict[str, Any] | None:
        try:
            return await asyncio.wait_for(self._monitor(client, cluster), self.interval * 0.9)
        except TimeoutError:
            return None

    async def _scrape(self, client: httpx.AsyncClient, node: _Node, tick: int) -> None:
        if node.url is None and not await self._forward_ready(node, tick):
            return
        assert node.url is not None
        try:
            response = await client.get(node.url)
            response.raise_for_status()
            values = parse_index(response.text)
        except httpx.TransportError as exc:
            # The forward, the node's endpoint or the SSH connection under it is gone.
            self._failed(node, f"{type(exc).__name__}: {exc}")
            await self._drop_forward(node)  # reopened later, on a new connection if it died
            return
        except (httpx.HTTPError, ValueError) as exc:
            self._failed(node, f"{type(exc).__name__}: {exc}")
            return
        node.window.add(Scrape(time.time(), values))

    async def _forward_ready(self, node: _Node, tick: int) -> bool:
        """Open the node's forward, waiting at most most of an interval; a slow connection goes
        on in the background while the other nodes are scraped. True once `node.url` works."""
        if node.opening is None:
            if node.window.failures and tick % 3:
                self._failed(node, node.last_error)
                return False  # a dead node is retried every third tick, not hammered
            node.opening = asyncio.create_task(self._open_forward(node))
        done, _ = await asyncio.wait({node.opening}, timeout=self.interval * 0.8)
        if not done:
            self._failed(
                node,
                f"connecting to {node.host.endpoint} takes longer than {self.interval * 0.8:g}s",
            )
            return False
        task, node.opening = node.opening, None
        try:
            node.url = task.result()
        except (MlopsError, OSError) as exc:
            reason = (
                exc.reason if isinstance(exc, TransportError) else f"{type(exc).__name__}: {exc}"
            )
            self._failed(node, reason)
            self.connections.forget(node.host.name)
            return False
        return True

    async def _open_forward(self, node: _Node) -> str:
        stack = AsyncExitStack()
        try:
            transport = await self.connections.get(node.host.name)
            host, port = await stack.enter_async_context(
                transport.forward(node.host.address, node.host.ray.metrics)
            )
        except BaseException:
            await stack.aclose()
            raise
        node.stack = stack
        return f"http://{host}:{port}/metrics"

    def _failed(self, node: _Node, reason: str) -> None:
        node.window.failures += 1
        node.last_error = reason

    async def _drop_forward(self, node: _Node) -> None:
        if node.opening is not None:
            node.opening.cancel()
            await asyncio.gather(node.opening, return_exceptions=True)
            node.opening = None
        if node.stack is not None:
            await node.stack.aclose()
        node.stack, node.url = None, None

    async def _monitor(
        self, client: httpx.AsyncClient, cluster: RayCluster
    ) -> dict[str, Any] | None:
        """The app's /monitor summary on one cluster (each keeps its own labels), or None."""
        head = cluster.head
        try:
            transport = await self.connections.get(head.name)
            async with transport.forward(head.address, head.ray.serve_http) as (host, port):
                response = await client.get(f"http://{host}:{port}{monitor_route(self.app.route)}")
            return response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, MlopsError, OSError, ValueError, TimeoutError):
            return None

    def _frame(
        self, nodes: list[_Node], monitors: dict[str, dict[str, Any] | None]
    ) -> TelemetryFrame:
        now = time.time()
        freshness: dict[str, str] = {}
        errors = []
        for n in nodes:
            # Stale after two failed intervals in a row, or when nothing arrived for two.
            stale = (
                n.window.last_ok is None
                or n.window.failures >= 2
                or now - n.window.last_ok > 2 * self.interval + 0.5
            )
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
            next(iter(monitors.values())) if len(monitors) == 1 else None,
            tuple(errors),
            {k: v for k, v in monitors.items() if v is not None},
        )
