"""status: one snapshot of each Ray cluster — nodes, Ray version, apps, versions, weights, replicas."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from cluster.check import probe
from cluster.errors import MlopsError, TransportError
from cluster.events import Event
from cluster.fanout import fan_out
from cluster.inventory import Inventory
from cluster.lease import LeaseHolder
from cluster.models.store import ModelStore
from cluster.provision.layout import Layout
from cluster.provision.observe import HostState, observe_host, serve_api
from cluster.provision.topology import RayCluster, clusters_of, selected_targets
from cluster.serve.config import version_of
from cluster.transport import Connections


@dataclass(frozen=True)
class NodeStatus(Event):
    """One node: reachable, Ray running, Ray version."""

    cluster: str
    host: str
    role: str
    up: bool
    ray_version: str | None
    detail: str


@dataclass(frozen=True)
class Split:
    """A share of an app's traffic: a canary's fraction, or a shadow's mirrored fraction."""

    version: str
    fraction: float


@dataclass(frozen=True)
class Traffic:
    """How the live version shares its route (none of it: both None)."""

    canary: Split | None = None
    shadow: Split | None = None

    @classmethod
    def from_config(cls, config: Any) -> Traffic:
        """From the live deployment's `user_config.traffic`; anything unreadable is no split."""
        if not isinstance(config, dict):
            return cls()

        def split(key: str) -> Split | None:
            item = config.get(key)
            try:
                return Split(str(item["version"]), float(item["fraction"])) if item else None
            except (KeyError, TypeError, ValueError):
                return None

        return cls(split("canary"), split("shadow"))


@dataclass(frozen=True)
class VersionStatus:
    """One deployed version of an app: live or preview, its Serve status and replicas."""

    version: str
    live: bool
    status: str
    replicas: int
    wanted: int
    traffic: Traffic = Traffic()


@dataclass(frozen=True)
class AppStatus(Event):
    """One app on one cluster: its live version, traffic, replicas and health."""

    cluster: str
    app: str
    live: str | None
    wanted_version: str | None
    versions: tuple[VersionStatus, ...]
    replicas_running: int
    replicas_wanted: int
    healthy: bool
    detail: str
    # The app's lease on the head, when one is held or was left behind: who runs what there,
    # and the phase it last wrote (a swap's steps); a killed operator's shows where it stopped.
    lease: LeaseHolder | None = None


async def status(connections: Connections, target_names: list[str] | None) -> AsyncIterator[Event]:
    inventory = connections.inventory
    for target in selected_targets(inventory, target_names):
        for cluster in clusters_of(inventory, target):
            async for event in _cluster_status(connections, cluster):
                yield event


async def _cluster_status(connections: Connections, cluster: RayCluster) -> AsyncIterator[Event]:
    """Each node is up when the head's GCS lists it as alive (a failed start can leave a
    process or two behind: counting processes would call that node up)."""
    head_state: HostState | None = None
    seen: list[tuple[str, str, HostState, str | None]] = []
    for host in cluster.hosts:
        role = "head" if host.name == cluster.head.name else "worker"
        try:
            state = await observe_host(connections, host)
            facts = await probe(connections, host)
        except TransportError as exc:
            yield NodeStatus(cluster.id, host.name, role, False, None, exc.reason)
            continue
        if host.name == cluster.head.name:
            head_state = state
        seen.append((host.name, role, state, facts.ray))
    layout = head_state.layout if head_state is not None and head_state.ray_running else None
    alive: set[str] | None = None
    why = "the head's Ray is not running"
    if layout is not None:
        try:
            async with serve_api(connections, cluster, layout) as api:
                alive = await api.alive_nodes()
        except MlopsError as exc:
            why = f"the head cannot say which nodes are alive ({exc})"
    for name, role, state, ray_version in seen:
        address = connections.inventory.hosts[name].address
        if not state.ray_running:
            up, detail = False, "Ray is not running"
        elif alive is None:
            up, detail = False, f"{state.ray_pids} Ray processes, but {why}"
        elif address not in alive:
            up, detail = (
                False,
                (
                    f"{state.ray_pids} Ray processes, but the head does not list this node as "
                    "alive (a failed start?); `mlops-tui apply` starts it again"
                ),
            )
        else:
            up, detail = True, f"alive in the cluster ({state.ray_pids} Ray processes)"
        yield NodeStatus(cluster.id, name, role, up, ray_version, detail)
    leases = head_state.leases if head_state is not None else {}
    for app_status in await app_statuses(connections, cluster, layout, leases):
        yield app_status


async def app_statuses(
    connections: Connections,
    cluster: RayCluster,
    layout: Layout | None,
    leases: dict[str, LeaseHolder] | None = None,
) -> list[AppStatus]:
    """Every inventory app of the cluster's target as its Serve runs it now (one REST read).

    `layout`: the head's (from observe_host); None means the head or its Ray is down.
    `leases`: the head's lease files (observe_host), to say who holds an app and where its
    operation stopped.
    """
    details: dict[str, Any] = {}
    problem = ""
    if layout is None:
        problem = "the cluster's head is down"
    else:
        try:
            async with serve_api(connections, cluster, layout) as api:
                details = (await api.applications()).get("applications") or {}
        except MlopsError as exc:
            problem = f"cannot read Serve state: {exc}"
    return app_statuses_from(connections.inventory, cluster, details, problem, leases)


def app_statuses_from(
    inventory: Inventory,
    cluster: RayCluster,
    details: dict[str, Any],
    problem: str = "",
    leases: dict[str, LeaseHolder] | None = None,
) -> list[AppStatus]:
    """The cluster's inventory apps from Serve's application details (or all failing with
    `problem` when they could not be read)."""
    apps = [a for a in inventory.apps.values() if a.target == cluster.target.name]
    store = ModelStore(inventory.settings.model_store)
    out = []
    for app in apps:
        # An unpinned model means its newest version; unknown when the store is not here.
        versions = store.versions(app.model) if app.model_version is None else []
        wanted = app.model_version or (versions[-1] if versions else None)
        found = _app_status(cluster, app.name, app.route, wanted, app.replicas, details, problem)
        lease = (leases or {}).get(app.name)
        out.append(_with_lease(found, lease) if lease is not None else found)
    return out


def _with_lease(found: AppStatus, lease: LeaseHolder) -> AppStatus:
    """Who holds the app's lease, and where its operation last said it was: beside the
    unfinished swap `status` found, the next operator reads where it stopped."""
    if found.healthy:
        return replace(found, lease=lease)
    gone = lease.gone  # asks this machine whether the pid still runs: once
    where = f"; `{lease.command}` by {lease.who}@{lease.machine}"
    if lease.pid:
        where += f" (pid {lease.pid}, gone)" if gone else f" (pid {lease.pid})"
    if lease.phase:
        where += f" last wrote `{lease.phase}`"
    if gone:
        where += f": its process was killed; `mlops-tui rollback {found.app}` ends its swap"
    return replace(found, detail=found.detail + where, lease=lease)


def _app_status(
    cluster: RayCluster,
    app: str,
    route: str,
    wanted: str | None,
    replicas: int,
    details: dict[str, Any],
    problem: str,
) -> AppStatus:
    if problem:
        return AppStatus(cluster.id, app, None, wanted, (), 0, replicas, False, problem)
    mine = {n: d for n, d in details.items() if version_of(n, app) is not None}
    if not mine:
        return AppStatus(cluster.id, app, None, wanted, (), 0, replicas, False, "not deployed")
    versions: list[VersionStatus] = []
    live = None
    running = wanted_total = 0
    unhealthy = []
    for name, info in sorted(mine.items()):
        version = version_of(name, app) or ""
        config = info.get("deployed_app_config") or {}
        is_live = info.get("route_prefix") == route or config.get("route_prefix") == route
        live = version if is_live else live
        deployments = info.get("deployments") or {}
        up = sum(
            1
            for d in deployments.values()
            for r in d.get("replicas", [])
            if r.get("state") == "RUNNING"
        )
        want = sum(int(d.get("num_replicas", 1)) for d in config.get("deployments") or [])
        traffic = ((config.get("deployments") or [{}])[0].get("user_config") or {}).get("traffic")
        versions.append(
            VersionStatus(
                version, is_live, str(info.get("status")), up, want, Traffic.from_config(traffic)
            )
        )
        running += up
        wanted_total += want
        if info.get("status") != "RUNNING" or up < want:
            unhealthy.append(f"{name} {info.get('status')} {up}/{want}")
    unhealthy += _unfinished(app, live, versions)
    live_wanted = next((v.wanted for v in versions if v.live), 0)
    if live is not None and live_wanted != replicas:
        unhealthy.append(
            f"{app}--{live} runs {live_wanted} replicas, the inventory wants {replicas}"
        )
    healthy = not unhealthy and live is not None and (wanted is None or live == wanted)
    detail = "; ".join(unhealthy) or (
        "" if healthy else f"live version {live}, inventory wants {wanted}"
    )
    return AppStatus(
        cluster.id,
        app,
        live,
        wanted,
        tuple(versions),
        running,
        max(wanted_total, replicas),
        healthy,
        detail or "healthy",
    )


def _unfinished(app: str, live: str | None, versions: list[VersionStatus]) -> list[str]:
    """A canary or shadow still on, or another version running beside the live one: a swap is
    under way, or one was cut off (a killed operator) and no one watches it."""
    problems = []
    live_status = next((v for v in versions if v.live), None)
    traffic = live_status.traffic if live_status is not None else Traffic()
    if traffic.canary is not None:
        problems.append(
            f"canary v{traffic.canary.version} takes {traffic.canary.fraction:.0%} of the traffic"
        )
    if traffic.shadow is not None:
        problems.append(
            f"shadow v{traffic.shadow.version} gets {traffic.shadow.fraction:.0%} of it mirrored"
        )
    others = [v.version for v in versions if not v.live]
    if others and not problems:
        listing = ", ".join(f"v{v}" for v in others)
        problems.append(f"{listing} deployed beside live v{live} without traffic")
    if problems:
        problems[-1] += (
            f": a swap is under way, or one was cut off; unless one runs, "
            f"`mlops-tui abort {app}` leaves v{live} alone with all the traffic"
        )
    return problems


async def app_state(connections: Connections, app_name: str) -> list[AppStatus]:
    """One app as Serve runs it now, per cluster of its target (for a confirmation that must
    say what a change would do, not what it would have done a few seconds ago). An edge
    fleet's hosts are read at once, `concurrency` at a time; one that cannot be read is an
    error (the confirmation would not be exact)."""
    inventory = connections.inventory
    app = inventory.apps[app_name]

    async def one(cluster: RayCluster) -> list[AppStatus]:
        head = await observe_host(connections, cluster.head)
        layout = head.layout if head.ray_running else None
        return [s for s in await app_statuses(connections, cluster, layout) if s.app == app_name]

    clusters = clusters_of(inventory, inventory.targets[app.target])
    found: dict[str, list[AppStatus]] = {}
    async for cluster, outcome in fan_out(clusters, one, limit=inventory.settings.concurrency):
        if isinstance(outcome, Exception):
            raise outcome
        found[cluster.id] = outcome
    return [s for c in clusters for s in found[c.id]]
