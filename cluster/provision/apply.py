"""apply: execute a cluster's plan step by step, reporting each step as an event.

Every step is atomic on its host (uploads are staged and verified before they replace
anything; Ray starts or it does not; Serve takes the whole config or keeps the old one), so
an interrupted apply leaves each host with some steps done and the rest as before, and the
events say exactly which. Running apply again converges.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from cluster.errors import MlopsError, TransportError
from cluster.events import Event
from cluster.fanout import fan_out
from cluster.inventory import Host
from cluster.provision.bundle import Bundle
from cluster.provision.events import HostSkipped, StepDone, StepFailed, StepStarted
from cluster.provision.observe import serve_api
from cluster.provision.plan import ClusterPlan
from cluster.provision.ray_node import (
    read_secret_file,
    start_node,
    stop_node,
    write_file,
)
from cluster.transport import Connections

Emit = Callable[[Event], Awaitable[None]]


class ClusterResult:
    """What happened to one cluster: the hosts that failed, and those left untouched."""

    def __init__(self) -> None:
        self.failed: set[str] = set()
        self.skipped: set[str] = set()


async def _step(
    emit: Emit, host: str, step: str, detail: str, work: Callable[[], Awaitable[str | None]]
) -> bool:
    await emit(StepStarted(host, step, detail))
    start = time.perf_counter()
    try:
        note = await work()
    except (MlopsError, OSError) as exc:
        reason = exc.reason if isinstance(exc, TransportError) else str(exc)
        await emit(StepFailed(host, step, reason, time.perf_counter() - start))
        return False
    await emit(StepDone(host, step, note or detail, time.perf_counter() - start))
    return True


async def apply_cluster(
    connections: Connections, plan: ClusterPlan, bundle: Bundle, emit: Emit, *, concurrency: int
) -> ClusterResult:
    cluster = plan.desired.cluster
    result = ClusterResult()
    head = cluster.head
    for name, reason in plan.unreachable.items():
        await emit(StepFailed(name, "connect", reason, 0.0))
        result.failed.add(name)
    if plan.errors:
        for error in plan.errors:
            await emit(StepFailed(head.name, "preflight", error, 0.0))
        result.failed.add(head.name)
        result.skipped |= {h.name for h in cluster.hosts} - result.failed
        for name in sorted(result.skipped):
            await emit(
                HostSkipped(name, f"preflight failed for cluster {cluster.id}; nothing was started")
            )
        return result
    if head.name in result.failed:
        for w in cluster.workers:
            if w.name not in result.failed:
                result.skipped.add(w.name)
                await emit(HostSkipped(w.name, f"head {head.name} is unreachable"))
        return result

    # 1. Ship code and models to every reachable host at once.
    async def ship(host: Host) -> bool:
        transport = await connections.get(host.name)
        layout = plan.states[host.name].layout
        ok = True
        if plan.for_host(host.name, "upload-code"):

            async def code() -> str:
                report = await transport.upload(bundle.path, layout.package)
                await write_file(transport, layout.bundle_file, bundle.sha256)
                return f"{report.files} files verified by sha256"

            ok = (
                await _step(emit, host.name, "upload-code", f"serving {bundle.sha256[:12]}", code)
                and ok
            )
        for action in plan.for_host(host.name, "upload-model"):
            model = next(m for m in plan.desired.models if f"{m.name}:{m.version}" == action.detail)

            async def upload(
                path: Path = model.path, name: str = model.name, version: str = model.version
            ) -> str:
                report = await transport.upload(path, layout.model_dir(name, version))
                return f"{report.files} files, {report.bytes} bytes verified by sha256"

            ok = await _step(emit, host.name, "upload-model", action.detail, upload) and ok
        return ok

    reachable = [h for h in cluster.hosts if h.name in plan.states]
    async for host, ok in fan_out(reachable, ship, limit=concurrency):
        if ok is not True:
            result.failed.add(host.name)
    if head.name in result.failed:
        return _skip_rest(result, cluster.hosts, f"head {head.name} failed")

    # 2. The cluster's token, then the head, then the workers.
    layout = plan.states[head.name].layout
    ray_hosts = [
        h
        for h in reachable
        if h.name not in result.failed and plan.for_host(h.name) and _ray_action(plan, h)
    ]
    head_transport = await connections.get(head.name)
    token_path = layout.token_file(cluster.id)
    if ray_hosts:
        token = await read_secret_file(head_transport, token_path)
        if token is None or _ray_action(plan, head):
            token = token or secrets.token_hex(32)
        for host in ray_hosts:
            transport = await connections.get(host.name)
            await write_file(transport, token_path, token, private=True)
        del token  # kept no longer than needed; never logged
    if _ray_action(plan, head) and not await _ray_step(connections, plan, head, emit):
        result.failed.add(head.name)
        return _skip_rest(result, cluster.hosts, f"Ray head on {head.name} did not start")
    workers = [
        w
        for w in cluster.workers
        if w.name in plan.states and w.name not in result.failed and _ray_action(plan, w)
    ]

    async def join(worker: Host) -> bool:
        return await _ray_step(connections, plan, worker, emit)

    async for worker, ok in fan_out(workers, join, limit=concurrency):
        if ok is not True:
            result.failed.add(worker.name)

    # 3. Serve: the whole config in one PUT, then wait for every application to run.
    serve_actions = [a for a in plan.actions if a.kind == "serve"]
    if serve_actions or _ray_action(plan, head):
        config = plan.desired.serve_config(layout)

        async def deploy() -> str:
            async with serve_api(connections, cluster, layout) as api:
                await api.deploy(config)
                await api.wait_running([a["name"] for a in config["applications"]], timeout=300)
            return "; ".join(a.detail for a in serve_actions) or "all applications running"

        if not await _step(
            emit, head.name, "serve", f"{len(config['applications'])} applications", deploy
        ):
            result.failed.add(head.name)
    return result


def _ray_action(plan: ClusterPlan, host: Host) -> bool:
    return bool(plan.for_host(host.name, "start-ray") or plan.for_host(host.name, "restart-ray"))


async def _ray_step(connections: Connections, plan: ClusterPlan, host: Host, emit: Emit) -> bool:
    transport = await connections.get(host.name)
    layout = plan.states[host.name].layout
    restart = bool(plan.for_host(host.name, "restart-ray"))
    role = "head" if host.name == plan.desired.cluster.head.name else "worker"

    async def start() -> str:
        if restart:
            await stop_node(transport, layout, host)
        await start_node(transport, layout, plan.desired.cluster, host)
        return f"Ray {role} running on {host.address} (token auth on)"

    return await _step(
        emit, host.name, "restart-ray" if restart else "start-ray", f"Ray {role}", start
    )


def _skip_rest(result: ClusterResult, hosts: tuple[Host, ...], reason: str) -> ClusterResult:
    for host in hosts:
        if host.name not in result.failed:
            result.skipped.add(host.name)
    return result


async def merged(
    runs: list[Callable[[Emit], Awaitable[ClusterResult]]],
) -> AsyncIterator[Event | ClusterResult]:
    """Run several clusters at once and interleave their events, then their results."""
    queue: asyncio.Queue[Event | ClusterResult | None] = asyncio.Queue()

    async def emit(event: Event) -> None:
        await queue.put(event)

    async def one(run: Callable[[Emit], Awaitable[ClusterResult]]) -> None:
        try:
            await queue.put(await run(emit))
        finally:
            await queue.put(None)

    tasks = [asyncio.create_task(one(r)) for r in runs]
    try:
        remaining = len(tasks)
        while remaining:
            item = await queue.get()
            if item is None:
                remaining -= 1
            else:
                yield item
        for task in tasks:
            task.result()  # re-raise a bug rather than hide it
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
