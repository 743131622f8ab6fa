"""rollback, promote, abort: one-step changes to an app's traffic, on each of its clusters.

Each keeps the zero-failure order of `versions`: whatever will serve runs first, the route
moves, every proxy is seen on it, and only then is anything retired.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator

from cluster.errors import UsageError
from cluster.events import Event
from cluster.inventory import App
from cluster.lease import Leases, LeaseSpot, holding
from cluster.models.store import ModelStore
from cluster.provision.observe import observe_host
from cluster.provision.status import AppStatus
from cluster.provision.topology import RayCluster, clusters_of
from cluster.rollout.events import SwapStep
from cluster.rollout.history import History, close_unfinished
from cluster.rollout.serve_state import AppServe, Deployed
from cluster.rollout.versions import move_route, restore, retire_others
from cluster.transport import Connections


async def change(
    connections: Connections,
    app: App,
    action: str,
    history: History,
    to: str | None = None,
    store: ModelStore | None = None,
    *,
    force: bool = False,
) -> AsyncIterator[Event]:
    """rollback: another version takes 100% (during a canary or shadow, that is the live one);
    promote: the canary (if any) takes 100% and the others retire; abort: canary and shadow
    stop and the live version keeps 100%. Holds the app's lease on its clusters throughout."""
    inventory = connections.inventory
    clusters = clusters_of(inventory, inventory.targets[app.target])
    spots = [LeaseSpot(app.name, c.id, c.head) for c in clusters]
    leases = Leases(connections, spots, f"{action} {app.name}", force=force)

    def note(_: LeaseSpot, text: str) -> Event:
        return SwapStep(app.name, app.target, "lease", text)

    changes = _change(connections, app, action, history, to, store)
    async for event in holding(leases, note, changes):
        yield event


async def _change(
    connections: Connections,
    app: App,
    action: str,
    history: History,
    to: str | None,
    store: ModelStore | None,
) -> AsyncGenerator[Event, None]:
    inventory = connections.inventory
    for said in close_unfinished(history.path, app.name, f"{action} {app.name}"):
        yield SwapStep(app.name, app.target, "recover", said)
    for cluster in clusters_of(inventory, inventory.targets[app.target]):
        head = await observe_host(connections, cluster.head)
        serve = AppServe(connections, cluster, head.layout, app)
        state = await serve.read()
        if state.live is None:
            raise UsageError(f"{app.name} is not deployed on {cluster.id}")
        t0 = time.perf_counter()
        if action == "rollback":
            version = _rollback_target(app, cluster, state, to)
            if version is None:  # an edge host already back (a partial swap): nothing to do
                yield SwapStep(
                    app.name, cluster.id, "skip", f"{state.live} is live; nothing to roll back"
                )
                continue
            if version not in state.versions and store is None:
                raise UsageError(f"version {version} is not deployed on {cluster.id}")
            retired = ", ".join(v for v in state.versions if v != version) or "nothing"
            # A retired version is started beside the live one and answers first.
            seconds = await restore(connections, serve, version, store)
            detail = f"{version} serves 100% again ({retired} retired)"
        elif action == "promote":
            winner = state.canary[0] if state.canary else state.live
            seconds = await move_route(connections, serve, state, winner, retire=True)
            detail = f"{winner} serves 100%; other versions retired"
        else:  # abort
            live = state.live
            seconds = await move_route(connections, serve, state, live, retire=False)
            await retire_others(serve, state)
            detail = f"canary and shadow stopped; {live} serves 100%"
        history.append(
            action, app=app.name, cluster=cluster.id, detail=detail, seconds=seconds,
            total_seconds=time.perf_counter() - t0,
        )  # fmt: skip
        yield SwapStep(
            app.name, cluster.id, action, detail,
            {"seconds": seconds, "total_seconds": time.perf_counter() - t0},
        )  # fmt: skip


def _rollback_target(app: App, cluster: RayCluster, state: Deployed, to: str | None) -> str | None:
    """--to, else: during a canary or shadow the live version (the new one never had all the
    traffic); else the one other deployed version. None: an edge host already there."""
    edge = cluster.target.topology == "edge"
    if to is not None:
        if to == state.live and not (state.canary or state.shadow):
            if edge:
                return None
            raise UsageError(f"{app.name} already serves version {to} on {cluster.id}")
        return to
    if state.canary or state.shadow:
        assert state.live is not None
        return state.live
    others = [v for v in state.versions if v != state.live]
    if len(others) == 1:
        return others[0]
    if not others and edge:
        return None
    choices = ", ".join(others) or "none (the old version was already retired)"
    raise UsageError(
        f"{app.name} on {cluster.id}: name the version to roll back to with --to (deployed: {choices})"
    )


def describe_change(
    action: str, status: AppStatus, previous: str | None = None
) -> tuple[str, str | None]:
    """What `change` would do on one cluster, in words, for a confirmation, and the version a
    rollback goes to (`previous`, from the history, when the old replicas were retired);
    UsageError when it could not (the same refusals `change` makes)."""
    if status.live is None:
        raise UsageError(f"{status.app} is not deployed on {status.cluster}")
    live = next((v for v in status.versions if v.live), None)
    canary = live.traffic.canary.version if live and live.traffic.canary else None
    shadow = live.traffic.shadow.version if live and live.traffic.shadow else None
    others = [v.version for v in status.versions if not v.live]
    where = f"{status.app} on {status.cluster}"
    if action == "promote":
        winner = canary or status.live
        gone = [v for v in [status.live, *others] if v != winner]
        retired = f"; {', '.join('v' + v for v in gone)} retired" if gone else ""
        return f"{where}: v{winner} gets 100% of the traffic{retired}", None
    if action == "abort":
        if not (canary or shadow):
            return (
                f"{where}: no canary or shadow runs; v{status.live} keeps 100% (others retired)",
                None,
            )
        phase = "canary" if canary else "shadow"
        return f"{where}: {phase} v{canary or shadow} stops; v{status.live} keeps 100%", None
    if canary or shadow:
        return f"{where}: v{canary or shadow} stops; v{status.live} keeps 100%", status.live
    if len(others) == 1:
        return (
            f"{where}: v{others[0]} gets 100% of the traffic again; v{status.live} retired",
            others[0],
        )
    if not others and previous is not None and previous != status.live:
        return (
            f"{where}: v{previous} (retired) starts again, answers, then gets 100% of the "
            f"traffic; v{status.live} retired",
            previous,
        )
    choices = ", ".join(others) or "none (the old version was already retired)"
    raise UsageError(f"{where}: name the version to roll back to (deployed: {choices})")
