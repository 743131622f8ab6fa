"""The provisioning operations the CLI and the TUI drive: plan, apply, destroy."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from cluster.errors import MlopsError, TransportError
from cluster.events import Event
from cluster.fanout import fan_out
from cluster.inventory import Inventory
from cluster.lease import Leases, LeaseSpot
from cluster.models.store import ModelStore
from cluster.provision.apply import ClusterResult, Emit, apply_cluster, merged
from cluster.provision.bundle import Bundle, build_bundle, temp_workdir
from cluster.provision.desired import desired_cluster
from cluster.provision.events import (
    HostSkipped,
    PlanReady,
    RunFinished,
    StepDone,
    StepFailed,
    StepStarted,
)
from cluster.provision.layout import Layout
from cluster.provision.leftovers import remove_leftovers
from cluster.provision.observe import observe_host, serve_api
from cluster.provision.plan import ClusterPlan, plan_cluster
from cluster.provision.ray_node import stop_node
from cluster.provision.topology import RayCluster, clusters_of, selected_targets
from cluster.transport import Connections


@dataclass
class Planned:
    """An open run: the connections, the plans made through them, the code bundle they ship."""

    connections: Connections
    plans: list[ClusterPlan]
    bundle: Bundle
    event: PlanReady


@asynccontextmanager
async def planned(
    inventory: Inventory,
    store: ModelStore,
    target_names: list[str] | None,
    rotate: frozenset[str] = frozenset(),
) -> AsyncIterator[Planned]:
    """Observe the hosts and plan; the connections and the bundle stay open for `apply_plans`.
    `rotate`: apps whose key is replaced by a new one (the old one kept for the grace period)."""
    with temp_workdir() as tmp:
        bundle = build_bundle(Path(tmp))
        async with Connections(inventory) as connections:
            plans = await make_plans(connections, store, target_names, bundle.sha256, rotate)
            yield Planned(connections, plans, bundle, plan_event(plans))


async def make_plans(
    connections: Connections,
    store: ModelStore,
    target_names: list[str] | None,
    bundle_sha: str,
    rotate: frozenset[str] = frozenset(),
) -> list[ClusterPlan]:
    """One plan per Ray cluster of the selected targets, observed in parallel."""
    inventory = connections.inventory
    desired = [
        desired_cluster(inventory, store, cluster)
        for target in selected_targets(inventory, target_names)
        for cluster in clusters_of(inventory, target)
    ]
    limit = inventory.settings.concurrency
    plans: list[ClusterPlan] = []
    async for _, outcome in fan_out(
        desired,
        lambda d: plan_cluster(connections, d, bundle_sha, concurrency=limit, rotate=rotate),
        limit=limit,
    ):
        if isinstance(outcome, Exception):
            raise outcome
        plans.append(outcome)
    order = {d.cluster.id: i for i, d in enumerate(desired)}
    return sorted(plans, key=lambda p: order[p.desired.cluster.id])


def plan_event(plans: list[ClusterPlan]) -> PlanReady:
    return PlanReady(
        actions=tuple(a for p in plans for a in p.actions),
        errors=tuple(e for p in plans for e in (*p.errors, *p.observe_errors)),
        unreachable=tuple(f"{h}: {r}" for p in plans for h, r in p.unreachable.items()),
    )


def has_changes(plans: list[ClusterPlan]) -> bool:
    return any(p.actions or p.errors or p.observe_errors or p.unreachable for p in plans)


def lease_spots(inventory: Inventory, clusters: list[RayCluster]) -> list[LeaseSpot]:
    """The lease of every app that runs on each of these clusters."""
    return [
        LeaseSpot(app.name, cluster.id, cluster.head)
        for cluster in clusters
        for app in inventory.apps.values()
        if app.target == cluster.target.name
    ]


async def apply_plans(
    connections: Connections, plans: list[ClusterPlan], bundle: Bundle, *, force: bool = False
) -> AsyncIterator[Event]:
    """Execute plans, holding the lease of every app on the clusters that change (a cluster
    whose head cannot be reached for it fails alone); targets one after another, an edge
    target in batches of hosts."""
    changing = [p.desired.cluster for p in plans if has_changes([p])]
    spots = lease_spots(connections.inventory, changing)
    async with Leases(connections, spots, "apply", force=force, skip_unreachable=True) as leases:
        for spot, note in leases.taken_over:
            yield StepDone(spot.head.name, "lease", note, 0.0)
        lost = leases.unreachable
        for plan in plans:
            if plan.desired.cluster.id in lost:
                head = plan.desired.cluster.head.name
                yield StepFailed(head, "lease", lost[plan.desired.cluster.id], 0.0)
        kept = [p for p in plans if p.desired.cluster.id not in lost]
        finished: RunFinished | None = None
        async with contextlib.aclosing(_apply_plans(connections, kept, bundle)) as events:
            async for event in events:
                if isinstance(event, RunFinished):
                    finished = event
                    continue
                yield event
    # The outcome comes after the leases are given back: a reader may stop at it.
    if finished is not None:
        heads = {p.desired.cluster.head.name for p in plans if p.desired.cluster.id in lost}
        yield RunFinished(finished.changed, tuple(sorted({*finished.failed_hosts, *heads})),
                          finished.skipped_hosts, finished.duration_s)  # fmt: skip


async def _apply_plans(
    connections: Connections, plans: list[ClusterPlan], bundle: Bundle
) -> AsyncGenerator[Event, None]:
    start = time.perf_counter()
    limit = connections.inventory.settings.concurrency
    failed: set[str] = set()
    skipped: set[str] = set()
    changed = 0
    by_target: dict[str, list[ClusterPlan]] = {}
    for plan in plans:
        by_target.setdefault(plan.desired.cluster.target.name, []).append(plan)
    for target_plans in by_target.values():
        target = target_plans[0].desired.cluster.target
        size = target.rollout.batch if target.topology == "edge" else len(target_plans)
        target_failures = 0
        for i in range(0, len(target_plans), size):
            batch = [p for p in target_plans[i : i + size] if has_changes([p])]
            if target.topology == "edge" and target_failures > target.rollout.max_failures:
                for plan in batch:
                    for host in plan.desired.cluster.hosts:
                        skipped.add(host.name)
                        yield HostSkipped(
                            host.name,
                            f"{target_failures} edge hosts failed (max_failures {target.rollout.max_failures}); stopped",
                        )
                continue
            runs: list[Callable[[Emit], Awaitable[ClusterResult]]] = [
                partial(_run, connections, plan, bundle, limit) for plan in batch
            ]
            async for item in merged(runs):
                if isinstance(item, ClusterResult):
                    failed |= item.failed
                    skipped |= item.skipped
                    target_failures += len(item.failed)
                    continue
                if isinstance(item, StepDone):
                    changed += 1
                yield item
    yield RunFinished(
        changed, tuple(sorted(failed)), tuple(sorted(skipped - failed)), time.perf_counter() - start
    )


async def _run(
    connections: Connections, plan: ClusterPlan, bundle: Bundle, limit: int, emit: Emit
) -> ClusterResult:
    return await apply_cluster(connections, plan, bundle, emit, concurrency=limit)


async def destroy(
    connections: Connections, target_names: list[str] | None, *, force: bool = False
) -> AsyncIterator[Event]:
    """Remove the Serve apps and stop every Ray process we started on the selected targets,
    holding the lease of every app on them."""
    start = time.perf_counter()
    inventory = connections.inventory
    failed: list[str] = []
    changed = 0
    clusters = [
        c for t in selected_targets(inventory, target_names) for c in clusters_of(inventory, t)
    ]
    spots = lease_spots(inventory, clusters)
    async with Leases(connections, spots, "destroy", force=force, skip_unreachable=True) as leases:
        for spot, note in leases.taken_over:
            yield StepDone(spot.head.name, "lease", note, 0.0)
        # Clusters are independent (an edge fleet is one per host): several at once, as many
        # as `concurrency` allows, their events interleaved.
        gate = asyncio.Semaphore(inventory.settings.concurrency)

        def run(cluster: RayCluster) -> Callable[[Emit], Awaitable[ClusterResult]]:
            async def go(emit: Emit) -> ClusterResult:
                async with gate:
                    # A head that cannot be reached cannot be destroyed: _destroy_cluster says so.
                    async for event in _destroy_cluster(connections, inventory, cluster):
                        await emit(event)
                return ClusterResult()

            return go

        async for event in merged([run(c) for c in clusters]):
            if isinstance(event, ClusterResult):
                continue
            if isinstance(event, StepFailed):
                failed.append(event.host)
            elif isinstance(event, StepDone):
                changed += 1
            yield event
    yield RunFinished(changed, tuple(sorted(set(failed))), (), time.perf_counter() - start)


async def _destroy_cluster(
    connections: Connections, inventory: Inventory, cluster: RayCluster
) -> AsyncIterator[Event]:
    states = {}
    for host in cluster.hosts:
        try:
            states[host.name] = await observe_host(connections, host)
        except TransportError as exc:
            yield StepFailed(host.name, "connect", exc.reason, 0.0)
    head_state = states.get(cluster.head.name)
    if head_state is not None and head_state.ray_running:
        yield StepStarted(cluster.head.name, "serve", "delete applications")
        t0 = time.perf_counter()
        try:
            async with serve_api(connections, cluster, head_state.layout) as api:
                await api.delete_all()
            yield StepDone(
                cluster.head.name, "serve", "applications deleted", time.perf_counter() - t0
            )
        except MlopsError as exc:
            yield StepFailed(cluster.head.name, "serve", str(exc), time.perf_counter() - t0)
    for host in (*cluster.workers, cluster.head):  # workers first, so they do not chase a dead head
        state = states.get(host.name)
        if state is None:
            continue
        t0 = time.perf_counter()
        try:
            transport = await connections.get(host.name)
            if state.ray_running:
                yield StepStarted(host.name, "stop-ray", "our Ray processes only")
                count = await stop_node(transport, Layout(state.layout.root), host)
                yield StepDone(
                    host.name, "stop-ray", f"{count} processes stopped", time.perf_counter() - t0
                )
            # The token, the app keys and the TLS key go even when Ray was already down: no
            # secret outlives its cluster.
            secrets = [state.layout.token_file(cluster.id), state.layout.keys_file(cluster.id)]
            secrets.append(state.layout.tls_dir(cluster.id))
            removed = await transport.run(["rm", "-rf", "--", *secrets])
            if not removed.ok:
                raise TransportError(
                    host.name, f"cannot remove the token, keys and TLS files: {removed.reason()}"
                )
            left = await remove_leftovers(transport, state.layout)
            if left:
                detail = f"{left} files left by an interrupted run removed"
                yield StepDone(host.name, "cleanup", detail, time.perf_counter() - t0)
        except TransportError as exc:
            yield StepFailed(host.name, "stop-ray", exc.reason, time.perf_counter() - t0)
