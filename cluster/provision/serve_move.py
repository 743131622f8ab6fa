"""`apply` changing an app's live version without failing a request.

One whole-config PUT that hands an app's route to another Serve application also removes the
old one: Serve stops its replicas while proxies still send them requests, and clients see
404s and 503s for a few seconds. So when the inventory names another version than the one
live, `apply` goes the way a swap does: the new version runs beside the old one (no traffic),
then the route moves with the old version still running, every node's proxy is seen
answering with the new one, and only then does the desired config, without the old version,
go in (the caller's PUT).
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass
from typing import Any

from cluster.errors import MlopsError
from cluster.provision.topology import RayCluster
from cluster.rollout.http_checks import wait_live
from cluster.serve.api import ServeApi
from cluster.serve.config import MONITOR_SUFFIX, owner_of, preview_route
from cluster.transport import Connections


@dataclass(frozen=True)
class RouteMove:
    """An app's route going from the Serve application that holds it to the desired one."""

    route: str
    old: str  # the Serve application holding the route now (running)
    new: str  # the one the desired config gives it to
    version: str  # the version `new` runs

    def __str__(self) -> str:
        return f"{self.route}: {self.old} -> {self.new}"


def route_moves(desired: dict[str, Any], observed: dict[str, Any]) -> list[RouteMove]:
    """Routes the desired config gives to another application than the running one."""
    holders: dict[str, str] = {}
    for name, info in (observed.get("applications") or {}).items():
        route = (info.get("deployed_app_config") or {}).get("route_prefix")
        if route and info.get("status") == "RUNNING":
            holders[route] = name
    moves = []
    for app in desired["applications"]:
        owner = owner_of(app["name"])
        if owner is None or app["name"].endswith(MONITOR_SUFFIX):
            continue
        holder = holders.get(app["route_prefix"])
        if holder is not None and holder != app["name"]:
            moves.append(RouteMove(app["route_prefix"], holder, app["name"], owner[1]))
    return moves


def _aside(config: dict[str, Any], route: str, name: str) -> dict[str, Any]:
    """`config` on its preview route, sending no traffic anywhere (no canary, no shadow)."""
    owner = owner_of(name)
    aside = copy.deepcopy(config)
    aside["route_prefix"] = preview_route(route, owner[1] if owner else name)
    for deployment in aside.get("deployments") or []:
        if "user_config" in deployment:
            deployment["user_config"] = {"traffic": {}}
    return aside


async def _deployed(api: ServeApi, timeout: float = 120.0) -> dict[str, dict[str, Any]]:
    """The deployed configs by name, once none of them is still being deleted (a version
    retired a moment ago must be gone before it is deployed again)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        apps = (await api.applications()).get("applications") or {}
        if not any(info.get("status") == "DELETING" for info in apps.values()):
            return {
                name: info["deployed_app_config"]
                for name, info in apps.items()
                if info.get("deployed_app_config")
            }
        if loop.time() > deadline:
            raise MlopsError(f"Serve is still deleting applications after {timeout:g}s")
        await asyncio.sleep(0.5)


async def move_routes(
    api: ServeApi,
    connections: Connections,
    cluster: RayCluster,
    desired: dict[str, Any],
    moves: list[RouteMove],
) -> None:
    """Start each move's new version beside the old, then move the routes; on return, every
    proxy answers with the new versions and the old ones still run (idle) until the desired
    config goes in. A failure leaves the old versions serving, and says so."""
    wanted = {a["name"]: a for a in desired["applications"]}
    present = await _deployed(api)
    beside = dict(present)
    for move in moves:
        beside.setdefault(move.new, _aside(wanted[move.new], move.route, move.new))
    await api.deploy({**desired, "applications": list(beside.values())})
    try:
        await api.wait_running([m.new for m in moves], timeout=300)
    except MlopsError as exc:
        olds = ", ".join(m.old for m in moves)
        raise MlopsError(f"the new versions did not start beside the live ones ({olds} still "
                         f"serve; the next apply removes what did not start): {exc}") from exc  # fmt: skip
    moved = dict(wanted)
    for move in moves:
        if move.old in present:
            moved[move.old] = _aside(present[move.old], move.route, move.old)
    await api.deploy({**desired, "applications": list(moved.values())})
    await api.wait_running(list(moved), timeout=300)
    for move in moves:
        await wait_live(connections, cluster, move.route, move.version)
