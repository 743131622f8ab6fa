"""The collector: a digest stream from every node of an app's cluster(s), one frame per interval.

Each node runs cluster/remote/metrics_digest.py over its own connection, with its Ray python:
it cuts Ray's /metrics page (1.7 MB with ten replicas) down to the few KB the figures need and
writes one digest per interval, which is parsed here as it arrives. Each cluster's head digest
also carries the answers of the apps' monitors there (monitors.py).

A node that stops answering is marked stale within two intervals while the others keep
updating; its digest is started again every few intervals, so it recovers by itself.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field

from cluster.errors import MlopsError, reason_of
from cluster.inventory import App, Host
from cluster.provision.topology import RayCluster
from cluster.remote import script
from cluster.telemetry.aggregate import version_stats
from cluster.telemetry.frame import MonitorSummary, NodeHealth, TelemetryFrame
from cluster.telemetry.monitors import (
    REKEY_INTERVALS,
    MonitorAnswers,
    MonitorAsk,
    digest_tls,
    monitor_every,
    monitor_headers,
)
from cluster.telemetry.prom import parse_index
from cluster.telemetry.window import NodeWindow, Scrape
from cluster.transport import Connections

DIGEST_END = b"# EOF\n"
DIGEST_ERROR = "# ERROR "
RETRY_INTERVALS = 3  # a dead node's digest is started again every third interval, not hammered
FIRST_DIGEST_S = 15.0  # the first frame waits this long at most for every node's first word
# Digests take a Python start (and an SSH connection) to begin; after that one per interval.
START_LIMIT_S = 60.0


@dataclass
class _Node:
    host: Host
    cluster: RayCluster
    window: NodeWindow
    heard: asyncio.Event = field(default_factory=asyncio.Event)  # a first digest or error came
    last_error: str = ""
    monitors: MonitorAnswers = field(default_factory=MonitorAnswers)  # a head's: its apps'


def digest_argv(
    host: Host,
    interval: float,
    monitor_urls: Iterable[str] = (),
    every: int = 1,
    tls: Iterable[str] = (),
) -> list[str]:
    """The node-side digest of the host's Ray metrics (and, on a head, of its apps' monitors,
    every `every` intervals, over HTTPS with the `tls` options), run with its Ray interpreter."""
    url = f"http://{host.address}:{host.ray.metrics}/metrics"
    urls = list(monitor_urls)
    asks = [f"--every={every}", *tls, *urls] if urls else []
    return [host.python, "-c", script("metrics_digest"), url, f"{interval:g}", *asks]


@dataclass
class Collector:
    """Follows the digests of every cluster one app runs on: one frame per interval."""

    connections: Connections
    app: App
    clusters: list[RayCluster]
    interval: float = 1.0
    window_s: float = 10.0

    async def frames(self, duration: float | None = None) -> AsyncGenerator[TelemetryFrame, None]:
        fleet = FleetCollector(
            self.connections, [(self.app, self.clusters)], self.interval, self.window_s
        )
        stream = fleet.frames(duration)
        try:
            async for frames in stream:
                yield frames[self.app.name]
        finally:
            await stream.aclose()


@dataclass
class FleetCollector:
    """Follows every node of several apps at once: one digest per node, however many of the
    apps it serves (a digest keeps every application's series), and one frame per app each
    interval.

    No node can hold up the others: each node's digest is read by its own task, and the frames
    are made every interval from whatever has arrived.
    """

    connections: Connections
    watched: list[tuple[App, list[RayCluster]]]
    interval: float = 1.0
    window_s: float = 10.0

    async def frames(
        self, duration: float | None = None
    ) -> AsyncGenerator[dict[str, TelemetryFrame], None]:
        keep = int(self.window_s / self.interval) + 2
        nodes: dict[str, _Node] = {}
        for app, clusters in self.watched:
            for cluster in clusters:
                for host in cluster.hosts:
                    nodes.setdefault(host.name, _Node(host, cluster, NodeWindow(keep)))
                nodes[cluster.head.name].monitors.asks.append(MonitorAsk(app, cluster))
        every = monitor_every(sum(len(c) for _, c in self.watched), self.interval)
        for node in nodes.values():
            node.monitors.every = every
        loop = asyncio.get_running_loop()
        start = loop.time()
        followers = [asyncio.create_task(self._follow(n)) for n in nodes.values()]
        try:
            first_word = [asyncio.create_task(n.heard.wait()) for n in nodes.values()]
            if first_word:
                await asyncio.wait(first_word, timeout=min(FIRST_DIGEST_S, duration or math.inf))
            for waiting in first_word:
                waiting.cancel()
            tick = 0
            while duration is None or loop.time() - start < duration:
                tick_start = loop.time()
                health = self._health(nodes.values())
                yield {
                    app.name: self._frame(app, clusters, nodes, health)
                    for app, clusters in self.watched
                }
                tick += 1
                await asyncio.sleep(max(0.0, self.interval - (loop.time() - tick_start)))
        finally:
            for follower in followers:
                follower.cancel()
            await asyncio.gather(*followers, return_exceptions=True)

    async def _follow(self, node: _Node) -> None:
        """Read the node's digests as they come; when its stream ends, say why and start a new
        one a few intervals later."""
        while True:
            try:
                await self._read_digests(node)
            except TimeoutError:
                self._failed(node, "no digest arrived in time (the host or its connection hangs)")
            except (MlopsError, OSError) as exc:
                self._failed(node, reason_of(exc))
                self.connections.forget(node.host.name)
            await asyncio.sleep(self.interval * RETRY_INTERVALS)

    async def _read_digests(self, node: _Node) -> None:
        asks = node.monitors.asks
        async with asyncio.timeout(START_LIMIT_S) as limit:
            transport = await self.connections.get(node.host.name)
            tls = digest_tls(asks[0].cluster) if asks else []
            urls = [a.url for a in asks]
            argv = digest_argv(node.host, self.interval, urls, node.monitors.every, tls)
            keys = await self._keys(node) if asks else None
            async with transport.stream(argv, keys) as stream:
                node.window.clear()  # a new digest's counters start anew
                while True:
                    block = (await stream.read_until(DIGEST_END)).decode("utf-8", "replace")
                    limit.reschedule(asyncio.get_running_loop().time() + self._block_limit())
                    now = time.time()
                    if block.startswith(DIGEST_ERROR):
                        self._failed(node, block[len(DIGEST_ERROR) :].splitlines()[0])
                    else:
                        node.window.add(Scrape(now, parse_index(block)))
                    if asks:
                        node.monitors.read(block, now)
                        if node.monitors.unauthorized and (
                            now - node.monitors.last_rekey > REKEY_INTERVALS * self.interval
                        ):  # a key was rotated: read it again, tell the digest
                            stream.send(await self._keys(node))
                    node.heard.set()

    async def _keys(self, node: _Node) -> bytes:
        """The Authorization headers of a head's monitor asks, as the digest reads them."""
        node.monitors.unauthorized = False
        node.monitors.last_rekey = time.time()
        headers = await monitor_headers(self.connections, node.monitors.asks)
        return (json.dumps(headers) + "\n").encode()

    def _block_limit(self) -> float:
        """How long a started digest may stay silent before it is started again: it writes
        every interval, even if only to say its fetch failed."""
        return max(5.0, 5 * self.interval)

    def _failed(self, node: _Node, reason: str) -> None:
        node.window.failures += 1
        node.last_error = reason
        node.heard.set()

    def _health(self, nodes: Iterable[_Node]) -> dict[str, tuple[NodeHealth, str]]:
        """Each node's freshness, and its last error when stale: stale once its node says a
        fetch failed, or when nothing arrived for two intervals."""
        now = time.time()
        out = {}
        for n in nodes:
            stale = (
                n.window.last_ok is None
                or n.window.failures >= 1
                or now - n.window.last_ok > 2 * self.interval + 0.5
            )
            out[n.host.name] = (NodeHealth.STALE, n.last_error) if stale else (NodeHealth.OK, "")
        return out

    def _frame(
        self,
        app: App,
        clusters: list[RayCluster],
        nodes: dict[str, _Node],
        health: dict[str, tuple[NodeHealth, str]],
    ) -> TelemetryFrame:
        now = time.time()
        monitors: dict[str, MonitorSummary | None] = {
            c.id: nodes[c.head.name].monitors.answer(app.name, now, self.interval) for c in clusters
        }
        names = [h.name for c in clusters for h in c.hosts]
        freshness = {n: health[n][0] for n in names}
        errors = tuple(f"{n}: {health[n][1]}" for n in names if health[n][1])
        windows = {n: nodes[n].window for n in names if freshness[n] == NodeHealth.OK}
        stats = version_stats(app.name, windows, self.window_s, now)
        return TelemetryFrame(
            app.name,
            now,
            self.window_s,
            dict(sorted(stats.items())),
            freshness,
            next(iter(monitors.values())) if len(monitors) == 1 else None,
            errors,
            {k: v for k, v in monitors.items() if v is not None},
        )
