"""status: one snapshot of each Ray cluster — nodes, Ray version, apps, versions, weights, replicas."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from cluster.check import probe
from cluster.errors import MlopsError, TransportError
from cluster.events import Event
from cluster.models.store import ModelStore
from cluster.provision.observe import HostState, observe_host, serve_api
from cluster.provision.topology import RayCluster, clusters_of, selected_targets
from cluster.serve.config import MONITOR_SUFFIX
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
class AppStatus(Event):
    """One app on one cluster: its live version, traffic, replicas and health."""

    cluster: str
    app: str
    live: str | None
    wanted_version: str | None
    versions: tuple[dict[str, Any], ...]
    replicas_running: int
    replicas_wanted: int
    healthy: bool
    detail: str


async def status(connections: Connections, target_names: list[str] | None) -> AsyncIterator[Event]:
    inventory = connections.inventory
    for target in selected_targets(inventory, target_names):
        for cluster in clusters_of(inventory, target):
            async for event in _cluster_status(connections, cluster):
                yield event


async def _cluster_status(connections: Connections, cluster: RayCluster) -> AsyncIterator[Event]:
    head_state: HostState | None = None
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
        detail = f"{state.ray_pids} Ray processes" if state.ray_running else "Ray is not running"
        yield NodeStatus(cluster.id, host.name, role, state.ray_running, facts.ray, detail)
    apps = [a for a in connections.inventory.apps.values() if a.target == cluster.target.name]
    details: dict[str, Any] = {}
    problem = ""
    if head_state is None or not head_state.ray_running:
        problem = "the cluster's head is down"
    else:
        try:
            async with serve_api(connections, cluster, head_state.layout) as api:
                details = (await api.applications()).get("applications") or {}
        except MlopsError as exc:
            problem = f"cannot read Serve state: {exc}"
    store = ModelStore(connections.inventory.settings.model_store)
    for app in apps:
        # An unpinned model means its newest version; unknown when the store is not here.
        versions = store.versions(app.model) if app.model_version is None else []
        wanted = app.model_version or (versions[-1] if versions else None)
        yield _app_status(cluster, app.name, app.route, wanted, app.replicas, details, problem)


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
    mine = {
        n: d
        for n, d in details.items()
        if n.startswith(f"{app}--") and not n.endswith(MONITOR_SUFFIX)
    }
    if not mine:
        return AppStatus(cluster.id, app, None, wanted, (), 0, replicas, False, "not deployed")
    versions = []
    live = None
    running = wanted_total = 0
    unhealthy = []
    for name, info in sorted(mine.items()):
        version = name.split("--", 1)[1]
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
        traffic = ((config.get("deployments") or [{}])[0].get("user_config") or {}).get(
            "traffic"
        ) or {}
        versions.append(
            {
                "version": version,
                "live": is_live,
                "status": info.get("status"),
                "replicas": up,
                "wanted": want,
                "traffic": traffic,
            }
        )
        running += up
        wanted_total += want
        if info.get("status") != "RUNNING" or up < want:
            unhealthy.append(f"{name} {info.get('status')} {up}/{want}")
    live_wanted = next((v["wanted"] for v in versions if v["live"]), 0)
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
