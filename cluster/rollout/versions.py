"""Moving an app between versions on one cluster without failing a request.

The order is always the same: the version that will serve is running first, then the route
moves (one whole-config PUT), then every node's proxy is seen answering with it, and only
then are other versions retired. Serve finishes in-flight requests before removing replicas.
"""

from __future__ import annotations

import time

from cluster.errors import MlopsError
from cluster.models.store import ModelStore, StoredVersion
from cluster.provision.observe import observe_host
from cluster.provision.topology import RayCluster
from cluster.rollout.http_checks import holdout, predict_until, probe_rows, wait_live
from cluster.rollout.serve_state import AppServe, Deployed
from cluster.serve.config import VersionSpec, preview_route, serve_app_name
from cluster.transport import Connections


async def ship_model(connections: Connections, cluster: RayCluster, model: StoredVersion) -> None:
    """Upload the version to every node that lacks it (sha256-verified on arrival)."""
    for host in cluster.hosts:
        state = await observe_host(connections, host)
        if state.models.get(f"{model.name}:{model.version}") != model.meta.sha256:
            transport = await connections.get(host.name)
            await transport.upload(model.path, state.layout.model_dir(model.name, model.version))


async def start_beside(
    connections: Connections, serve: AppServe, state: Deployed, model: StoredVersion
) -> VersionSpec:
    """Run `model` next to what is deployed (no traffic) and wait until Serve says RUNNING."""
    app, cluster = serve.app, serve.cluster
    name = serve_app_name(app.name, model.version)
    await serve.wait_gone([n for n in state.deleting if n == name])  # never reuse a dying one
    await ship_model(connections, cluster, model)
    spec = VersionSpec(
        model.version,
        serve.layout.model_dir(model.name, model.version),
        app.replicas,
        app.num_cpus,
    )
    assert state.live is not None
    versions = {**state.versions, model.version: spec}  # once, even if it was deployed idle
    await serve.write(serve.spec(state.live, list(versions.values())), wait_for=[name])
    state.versions[model.version] = spec
    return spec


async def move_route(
    connections: Connections, serve: AppServe, state: Deployed, to: str, *, retire: bool
) -> float:
    """Give `to` (already running) 100% of the traffic; canary and shadow stop.

    Returns the seconds from the PUT until every node's proxy answers with `to`. With
    `retire`, the other versions are removed after that, and their removal is waited out.
    """
    t0 = time.perf_counter()
    await serve.write(serve.spec(to, list(state.versions.values())))
    await wait_live(connections, serve.cluster, serve.app.route, to)
    seconds = time.perf_counter() - t0
    state.live, state.canary, state.shadow = to, None, None
    if retire:
        await retire_others(serve, state)
    return seconds


async def retire_others(serve: AppServe, state: Deployed) -> list[str]:
    """Remove every version but the live one; returns the versions removed."""
    assert state.live is not None
    gone = [v for v in state.versions if v != state.live]
    if gone:
        await serve.write(serve.spec(state.live, [state.versions[state.live]]))
        await serve.wait_gone([serve_app_name(serve.app.name, v) for v in gone])
        for v in gone:
            del state.versions[v]
    return gone


async def restore(
    connections: Connections, serve: AppServe, version: str, store: ModelStore | None
) -> float:
    """Put `version` back at 100% on this cluster, starting it first if it was retired, and
    retire the rest. Returns the seconds the route move took (see `move_route`)."""
    state = await serve.read()
    if state.live is None:
        raise MlopsError(f"{serve.app.name} is not deployed on {serve.cluster.id}")
    if version not in state.versions:
        if store is None:
            raise MlopsError(f"version {version} is not deployed on {serve.cluster.id}")
        model = store.get(serve.app.model, version)
        await start_beside(connections, serve, state, model)
        await answers(connections, serve, model)
    return await move_route(connections, serve, state, version, retire=True)


async def answers(connections: Connections, serve: AppServe, model: StoredVersion) -> None:
    """A version started again answers real predictions on its preview route before any
    traffic moves to it, as a new one must in a swap."""
    rows = probe_rows(model, holdout(model))[: serve.app.max_rows]
    route = preview_route(serve.app.route, model.version)
    await predict_until(
        connections,
        serve.cluster,
        serve.app.name,
        route,
        rows,
        model.version,
        max_rows=serve.app.max_rows,
    )
