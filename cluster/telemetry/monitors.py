"""The apps' monitors (accuracy, drift): one small httpx client and one kept-open port forward
per cluster. A big edge fleet's monitors are asked in turn, at most ASKS_PER_S a second, so
the collector's cost stays flat however many clusters an app runs on."""

from __future__ import annotations

import asyncio
import math
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import httpx

from cluster.errors import MlopsError
from cluster.inventory import App
from cluster.keys import bearer, cluster_app_key
from cluster.provision.topology import RayCluster
from cluster.serve.config import monitor_route
from cluster.telemetry.frame import MonitorSummary
from cluster.transport import Connections

ASKS_PER_S = 20.0
KEEP_TURNS = 3


@dataclass
class _Line:
    """The way to one cluster's monitor: its client, and the forward while it is open."""

    client: httpx.AsyncClient
    stack: AsyncExitStack | None = None
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # the app's key


@dataclass
class Monitors:
    """The latest answer of each cluster's monitor for one app (None: no answer)."""

    connections: Connections
    app: App
    clusters: list[RayCluster]
    interval: float
    latest: dict[str, MonitorSummary | None] = field(default_factory=dict)
    _lines: dict[str, _Line] = field(default_factory=dict)
    _missed: dict[str, int] = field(default_factory=dict)  # turns without an answer in a row

    def __post_init__(self) -> None:
        self.every = max(1, math.ceil(len(self.clusters) / (ASKS_PER_S * self.interval)))
        # One client per cluster: a single pool of hundreds of connections costs its
        # bookkeeping on every request (httpcore scans the pool). Plain HTTP through forwards:
        # no certificates to load (200 loads cost 5 s of CPU). Connections outlive the turn.
        limits = httpx.Limits(
            max_connections=2, keepalive_expiry=max(30.0, 3 * self.every * self.interval)
        )
        timeout = httpx.Timeout(self.interval * 0.8)
        for cluster in self.clusters:
            client = httpx.AsyncClient(timeout=timeout, limits=limits, verify=False)
            self._lines[cluster.id] = _Line(client)

    async def refresh(self, tick: int) -> None:
        """Ask the monitors whose turn it is at this tick. A monitor that does not answer in
        time keeps its last answer for KEEP_TURNS of its turns (one slow answer must not look
        like an app without labels), then has none."""
        due = [c for i, c in enumerate(self.clusters) if (tick + i) % self.every == 0]
        answers = await asyncio.gather(*(self._ask_within(c) for c in due))
        for cluster, answer in zip(due, answers, strict=True):
            if answer is not None:
                self.latest[cluster.id] = answer
                self._missed[cluster.id] = 0
                continue
            missed = self._missed[cluster.id] = self._missed.get(cluster.id, 0) + 1
            if missed > KEEP_TURNS or cluster.id not in self.latest:
                self.latest[cluster.id] = None

    async def aclose(self) -> None:
        for line in self._lines.values():
            await self._drop(line)
            await line.client.aclose()

    async def _ask_within(self, cluster: RayCluster) -> MonitorSummary | None:
        try:
            return await asyncio.wait_for(self._ask(cluster), self.interval * 0.9)
        except TimeoutError:
            return None

    async def _ask(self, cluster: RayCluster) -> MonitorSummary | None:
        """The app's /monitor summary on one cluster (each keeps its own labels), or None."""
        line = self._lines[cluster.id]
        try:
            if line.url is None:
                line.url = await self._open(line, cluster)
            response = await line.client.get(line.url, headers=line.headers)
            if response.status_code == 401:  # the key was rotated: read it again next turn
                await self._drop(line)
                return None
            if response.status_code != 200:
                return None
            return MonitorSummary.from_json(response.json())
        except (httpx.TransportError, MlopsError, OSError):
            await self._drop(line)  # the forward or its connection is gone: reopened next turn
            return None
        except (httpx.HTTPError, ValueError):  # ValueError: not JSON, or not the monitor's shape
            return None

    async def _open(self, line: _Line, cluster: RayCluster) -> str:
        head = cluster.head
        stack = AsyncExitStack()
        try:
            transport = await self.connections.get(head.name)
            host, port = await stack.enter_async_context(
                transport.forward(head.address, head.ray.serve_http)
            )
        except BaseException:
            await stack.aclose()
            raise
        line.stack = stack
        line.headers = bearer(await cluster_app_key(self.connections, cluster, self.app.name))
        return f"http://{host}:{port}{monitor_route(self.app.route)}"

    async def _drop(self, line: _Line) -> None:
        stack, line.stack, line.url = line.stack, None, None
        if stack is not None:
            await stack.aclose()
