"""rollback, promote, abort: one-step changes to an app's traffic, applied to each of its clusters."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from cluster.errors import UsageError
from cluster.events import Event
from cluster.inventory import App
from cluster.models.store import ModelStore
from cluster.provision.observe import observe_host
from cluster.provision.topology import clusters_of
from cluster.rollout.history import History
from cluster.rollout.serve_state import AppServe
from cluster.rollout.swap import SwapStep
from cluster.serve.config import VersionSpec, serve_app_name
from cluster.transport import Connections


async def change(
    connections: Connections,
    app: App,
    action: str,
    history: History,
    to: str | None = None,
    store: ModelStore | None = None,
) -> AsyncIterator[Event]:
    """rollback: another deployed version takes 100%; promote: the canary (if any) takes 100%
    and the other versions retire; abort: canary and shadow stop, the live version keeps 100%."""
    inventory = connections.inventory
    for cluster in clusters_of(inventory, inventory.targets[app.target]):
        head = await observe_host(connections, cluster.head)
        serve = AppServe(connections, cluster, head.layout, app)
        state = await serve.read()
        if state.live is None:
            raise UsageError(f"{app.name} is not deployed on {cluster.id}")
        t0 = time.perf_counter()
        if action == "rollback":
            others = [v for v in state.versions if v != state.live]
            target = to or (others[0] if len(others) == 1 else None)
            if target is None:
                choices = ", ".join(others) or "none (the old version was already retired)"
                raise UsageError(
                    f"{app.name} on {cluster.id}: name the version to roll back to with --to (deployed: {choices})"
                )
            if target not in state.versions:
                # Retired already: start it beside the live one first, then flip (no request fails).
                await serve.wait_gone(
                    [n for n in state.deleting if n == serve_app_name(app.name, target)]
                )
                await serve.wait_gone(
                    [n for n in state.deleting if n == serve_app_name(app.name, target)]
                )
                if store is None:
                    raise UsageError(f"version {target} is not deployed on {cluster.id}")
                model = store.get(app.model, target)
                for host in cluster.hosts:
                    host_state = await observe_host(connections, host)
                    if host_state.models.get(f"{model.name}:{model.version}") != model.meta.sha256:
                        transport = await connections.get(host.name)
                        await transport.upload(
                            model.path, host_state.layout.model_dir(model.name, model.version)
                        )
                model_dir = head.layout.model_dir(model.name, model.version)
                state.versions[target] = VersionSpec(target, model_dir, app.replicas, app.num_cpus)
                both = [state.versions[state.live], state.versions[target]]
                await serve.write(
                    serve.spec(state.live, both),
                    state.others,
                    wait_for=[serve_app_name(app.name, target)],
                )
                t0 = time.perf_counter()  # the rollback itself starts once the version runs
            spec = serve.spec(target, [state.versions[target], state.versions[state.live]])
            detail = f"{target} serves 100% again ({state.live} kept for a moment, idle)"
        elif action == "promote":
            winner = state.canary[0] if state.canary else state.live
            spec = serve.spec(winner, [state.versions[winner]])
            detail = f"{winner} serves 100%; other versions retired"
        else:  # abort
            spec = serve.spec(state.live, [state.versions[state.live]])
            detail = f"canary and shadow stopped; {state.live} serves 100%"
        await serve.write(spec, state.others, wait_for=[serve_app_name(app.name, spec.live)])
        history.append(
            action,
            app=app.name,
            cluster=cluster.id,
            detail=detail,
            seconds=time.perf_counter() - t0,
        )
        yield SwapStep(app.name, cluster.id, action, detail, {"seconds": time.perf_counter() - t0})
