"""The collector: a digest stream from every node of an app's cluster(s), one frame per interval.

Each node runs cluster/remote/metrics_digest.py over its own connection, with its Ray python:
it cuts Ray's /metrics page (1.7 MB with ten replicas) down to the few KB the figures need and
writes one digest per interval, which is parsed here as it arrives. The apps' monitors are asked
with httpx through SSH port forwards (monitors.py).

A node that stops answering is marked stale within two intervals while the others keep
updating; its digest is started again every few intervals, so it recovers by itself.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from cluster.errors import MlopsError, reason_of
from cluster.events import Event
from cluster.inventory import App, Host
from cluster.provision.topology import RayCluster
from cluster.remote import script
from cluster.telemetry.aggregate import version_stats
from cluster.telemetry.monitors import Monitors
from cluster.telemetry.prom import parse_index
from cluster.telemetry.window import NodeWindow, Scrape
from cluster.transport import Connections

HISTORY = 600  # frames kept for sparklines: 10 minutes at 1 Hz
DIGEST_END = b"# EOF\n"
DIGEST_ERROR = "# ERROR "
RETRY_INTERVALS = 3  # a dead node's digest is started again every third interval, not hammered
FIRST_DIGEST_S = 15.0  # the first frame waits this long at most for every node's first word
# Digests take a Python start (and an SSH connection) to begin; after that one per interval.
START_LIMIT_S = 60.0


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
    heard: asyncio.Event = field(default_factory=asyncio.Event)  # a first digest or error came
    last_error: str = ""


def digest_argv(host: Host, interval: float) -> list[str]:
    """The node-side digest of the host's Ray metrics, run with its Ray interpreter."""
    url = f"http://{host.address}:{host.ray.metrics}/metrics"
    return [host.python, "-c", script("metrics_digest"), url, f"{interval:g}"]


@dataclass
class Collector:
    """Follows the digests of every cluster an app runs on.

    No node can hold up the others: each node's digest is read by its own task, and a frame is
    made every interval from whatever has arrived.
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
        monitors = Monitors(self.connections, self.app, self.clusters, self.interval)
        followers = [asyncio.create_task(self._follow(n)) for n in nodes]
        try:
            first_word = [asyncio.create_task(n.heard.wait()) for n in nodes]
            await asyncio.wait(first_word, timeout=min(FIRST_DIGEST_S, duration or math.inf))
            for waiting in first_word:
                waiting.cancel()
            tick = 0
            while duration is None or loop.time() - start < duration:
                tick_start = loop.time()
                await monitors.refresh(tick)
                frame = self._frame(nodes, monitors.latest)
                self.history.append(frame)
                yield frame
                tick += 1
                await asyncio.sleep(max(0.0, self.interval - (loop.time() - tick_start)))
        finally:
            for follower in followers:
                follower.cancel()
            await asyncio.gather(*followers, return_exceptions=True)
            await monitors.aclose()

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
        async with asyncio.timeout(START_LIMIT_S) as limit:
            transport = await self.connections.get(node.host.name)
            async with transport.stream(digest_argv(node.host, self.interval)) as stream:
                node.window.clear()  # a new digest's counters start anew
                while True:
                    block = (await stream.read_until(DIGEST_END)).decode("utf-8", "replace")
                    limit.reschedule(asyncio.get_running_loop().time() + self._block_limit())
                    if block.startswith(DIGEST_ERROR):
                        self._failed(node, block[len(DIGEST_ERROR) :].splitlines()[0])
                    else:
                        node.window.add(Scrape(time.time(), parse_index(block)))
                    node.heard.set()

    def _block_limit(self) -> float:
        """How long a started digest may stay silent before it is started again: it writes
        every interval, even if only to say its fetch failed."""
        return max(5.0, 5 * self.interval)

    def _failed(self, node: _Node, reason: str) -> None:
        node.window.failures += 1
        node.last_error = reason
        node.heard.set()

    def _frame(
        self, nodes: list[_Node], monitors: dict[str, dict[str, Any] | None]
    ) -> TelemetryFrame:
        now = time.time()
        freshness: dict[str, str] = {}
        errors = []
        for n in nodes:
            # Stale once its node says a fetch failed, or when nothing arrived for two intervals.
            stale = (
                n.window.last_ok is None
                or n.window.failures >= 1
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
