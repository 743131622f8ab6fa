"""The whole fleet at a glance: every app's telemetry and Serve state, one row per app.

`FleetWatch` follows every node once (one digest per node, however many apps it serves) and
reads each cluster's Serve applications every few seconds; `app_row` turns what it knows of
one app into the figures an operator scans first. The console's overview and any headless
report read the same rows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from enum import StrEnum

from cluster.errors import MlopsError, TransportError
from cluster.events import Event
from cluster.inventory import App, Target
from cluster.provision.observe import observe_host, serve_api
from cluster.provision.status import AppStatus, VersionStatus, app_statuses_from
from cluster.provision.topology import RayCluster, clusters_of
from cluster.serve.api import ServeApi
from cluster.telemetry.collector import FleetCollector
from cluster.telemetry.frame import NodeHealth, TelemetryFrame
from cluster.transport import Connections

STATE_EVERY_S = 5.0  # each cluster's Serve state is read this often (at most)
STATE_READS_PER_S = 20.0  # a big edge fleet is read in turn, never all at once
DOWN_RETRY_S = 30.0  # a head without Ray is looked at again this much later
ERROR_RETRY_S = 10.0  # a head that could not be read, likewise
ERROR_RATE_WARN = 0.01


class Health(StrEnum):
    """An app's overall state; the text is shown too, so it never relies on colour alone."""

    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class AppRow:
    """What the overview shows for one app across its clusters."""

    app: str
    target: str
    topology: str
    nodes_up: int
    nodes_total: int
    stale: tuple[str, ...]
    live: str | None
    versions: tuple[VersionStatus, ...]
    replicas_healthy: int
    replicas_total: int
    rps: float
    p95_ms: float | None
    error_rate: float
    accuracy: float | None
    labelled: int
    drift: str | None  # the feature that drifts most, when drift crosses its threshold
    health: Health
    problems: tuple[str, ...] = ()


def app_row(
    app: App,
    target: Target,
    nodes_total: int,
    frame: TelemetryFrame | None,
    deployed: tuple[AppStatus, ...],
) -> AppRow:
    """One app's row from its latest frame (None before the first) and Serve state per cluster."""
    problems: list[str] = []
    lives = {d.live for d in deployed if d.live is not None}
    live = next(iter(lives)) if len(lives) == 1 else None
    if len(lives) > 1:
        problems.append(f"live versions differ across hosts: {', '.join(sorted(lives))}")
    problems += [f"{d.cluster}: {d.detail}" for d in deployed if not d.healthy]
    versions = deployed[0].versions if len(deployed) == 1 else _merged(deployed)
    if frame is None:
        health = Health.UNKNOWN if not problems else Health.DEGRADED
        return AppRow(
            app.name, target.name, target.topology, 0, nodes_total, (), live, versions,
            0, sum(d.replicas_wanted for d in deployed), 0.0, None, 0.0, None, 0, None,
            health, tuple(problems),
        )  # fmt: skip
    stale = tuple(frame.stale_nodes)
    up = sum(1 for h in frame.nodes.values() if h == NodeHealth.OK)
    served = frame.versions.get(live) if live else None
    if served is None and frame.versions:  # Serve state not read yet: the busiest version
        served = max(frame.versions.values(), key=lambda s: s.requests)
    reported = [s for s in frame.versions.values() if s.replicas is not None]
    healthy = sum(s.healthy_replicas or 0 for s in reported)
    total = sum(s.replicas or 0 for s in reported)
    if not reported and deployed:  # no health gauges yet: Serve's own count
        healthy = sum(d.replicas_running for d in deployed)
        total = sum(d.replicas_wanted for d in deployed)
    accuracy, labelled = version_accuracy(frame, served.version if served else live)
    quality = frame.quality(served.version) if served else None
    drift = quality.drift if quality else None
    drifting = drift.worst_feature if drift is not None and drift.warning else None
    error_rate = served.error_rate if served else 0.0
    if stale:
        problems.append(f"stale: {', '.join(stale)}")
    if healthy < total:
        problems.append(f"{total - healthy} of {total} replicas unhealthy")
    if error_rate > ERROR_RATE_WARN:
        problems.append(f"error rate {error_rate:.1%}")
    if drifting:
        problems.append(f"drift on {drifting}")
    if up == 0 or (deployed and all(d.live is None for d in deployed)):
        health = Health.DOWN
    else:
        health = Health.DEGRADED if problems else Health.OK
    return AppRow(
        app.name, target.name, target.topology, up, len(frame.nodes), stale, live, versions,
        healthy, total, served.requests_per_s if served else 0.0, served.p95_ms if served else None,
        error_rate, accuracy, labelled, drifting, health, tuple(problems),
    )  # fmt: skip


def version_accuracy(frame: TelemetryFrame, version: str | None) -> tuple[float | None, int]:
    """The version's accuracy over the last labelled predictions; on an edge fleet, every host's
    monitor weighted by its labels."""
    if version is None:
        return None, 0
    summaries = [frame.monitor] if frame.monitor else list(frame.monitors.values())
    figures = [
        (q.last_n.accuracy, q.last_n.n)
        for s in summaries
        if (q := s.versions.get(version)) is not None and q.last_n.accuracy is not None
    ]
    labelled = sum(n for _, n in figures)
    if not labelled:
        return None, 0
    return sum(a * n for a, n in figures if a is not None) / labelled, labelled


def _merged(deployed: tuple[AppStatus, ...]) -> tuple[VersionStatus, ...]:
    """An edge fleet's versions: each version once, as the first host that runs it reports."""
    seen: dict[str, VersionStatus] = {}
    for status in deployed:
        for v in status.versions:
            seen.setdefault(v.version, v)
    return tuple(seen.values())


@dataclass(frozen=True)
class FleetSnapshot(Event):
    """Every interval: each app's frame, its Serve state per cluster, and its overview row."""

    at: float
    frames: dict[str, TelemetryFrame]
    deployed: dict[str, tuple[AppStatus, ...]]
    rows: tuple[AppRow, ...]


@dataclass
class _StateLine:
    """A kept-open way to one cluster's Serve REST API (forward and token read once)."""

    stack: AsyncExitStack
    api: ServeApi


@dataclass
class FleetWatch:
    """Follows every app of the inventory (or the ones named) until cancelled."""

    connections: Connections
    apps: list[App] = field(default_factory=list)
    interval: float = 1.0
    window_s: float = 10.0
    state_every_s: float = STATE_EVERY_S

    def __post_init__(self) -> None:
        inventory = self.connections.inventory
        if not self.apps:
            self.apps = list(inventory.apps.values())
        self._clusters = {
            a.name: clusters_of(inventory, inventory.targets[a.target]) for a in self.apps
        }
        unique: dict[str, RayCluster] = {}
        for clusters in self._clusters.values():
            for c in clusters:
                unique.setdefault(c.id, c)
        self._all = list(unique.values())
        self._states: dict[str, list[AppStatus]] = {}  # cluster id -> its apps' states
        self._lines: dict[str, _StateLine] = {}
        self._retry_at: dict[str, float] = {}  # cluster id -> when to observe its head again

    async def snapshots(self, duration: float | None = None) -> AsyncGenerator[FleetSnapshot, None]:
        collector = FleetCollector(
            self.connections, [(a, self._clusters[a.name]) for a in self.apps],
            self.interval, self.window_s,
        )  # fmt: skip
        poller = asyncio.create_task(self._poll_states())
        stream = collector.frames(duration)
        try:
            async for frames in stream:
                yield self._snapshot(frames)
        finally:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
            await stream.aclose()

    def snapshot_without_telemetry(self) -> FleetSnapshot:
        """Rows before the first frame: the inventory's apps, with whatever state is known."""
        return self._snapshot({})

    def _snapshot(self, frames: dict[str, TelemetryFrame]) -> FleetSnapshot:
        inventory = self.connections.inventory
        deployed: dict[str, tuple[AppStatus, ...]] = {}
        rows = []
        for app in self.apps:
            clusters = self._clusters[app.name]
            states = tuple(
                s for c in clusters for s in self._states.get(c.id, []) if s.app == app.name
            )
            deployed[app.name] = states
            total = sum(len(c.hosts) for c in clusters)
            target = inventory.targets[app.target]
            rows.append(app_row(app, target, total, frames.get(app.name), states))
        return FleetSnapshot(time.time(), frames, deployed, tuple(rows))

    async def _poll_states(self) -> None:
        """Each cluster's Serve state every `state_every_s`, or in turn for a big fleet."""
        if not self._all:
            return
        every = max(self.state_every_s, len(self._all) / STATE_READS_PER_S)
        pause = every / len(self._all)
        try:
            while True:
                for cluster in self._all:
                    started = time.monotonic()
                    await self._read_state(cluster)
                    await asyncio.sleep(max(0.0, pause - (time.monotonic() - started)))
        finally:
            for cluster_id in list(self._lines):
                await self._drop(cluster_id)

    async def _read_state(self, cluster: RayCluster) -> None:
        inventory = self.connections.inventory
        if time.monotonic() < self._retry_at.get(cluster.id, 0.0):
            return  # down at the last look: its state stands until the retry
        try:
            async with asyncio.timeout(max(10.0, self.state_every_s)):
                line = self._lines.get(cluster.id) or await self._open(cluster)
                if line is None:
                    states = app_statuses_from(inventory, cluster, {}, "the cluster's head is down")
                    self._retry_at[cluster.id] = time.monotonic() + DOWN_RETRY_S
                else:
                    details = (await line.api.applications()).get("applications") or {}
                    states = app_statuses_from(inventory, cluster, details)
        except (TimeoutError, MlopsError, OSError) as exc:
            reason = exc.reason if isinstance(exc, TransportError) else str(exc) or "timed out"
            await self._drop(cluster.id)  # opened again later (Ray or sshd may restart)
            self._retry_at[cluster.id] = time.monotonic() + ERROR_RETRY_S
            states = app_statuses_from(inventory, cluster, {}, f"cannot read Serve state: {reason}")
        self._states[cluster.id] = states

    async def _open(self, cluster: RayCluster) -> _StateLine | None:
        """The head's Serve API through a forward; None when the head runs no Ray."""
        state = await observe_host(self.connections, cluster.head)
        if not state.ray_running:
            return None
        stack = AsyncExitStack()
        try:
            api = await stack.enter_async_context(
                serve_api(self.connections, cluster, state.layout)
            )
        except BaseException:
            await stack.aclose()
            raise
        self._lines[cluster.id] = line = _StateLine(stack, api)
        return line

    async def _drop(self, cluster_id: str) -> None:
        line = self._lines.pop(cluster_id, None)
        if line is not None:
            await line.stack.aclose()
