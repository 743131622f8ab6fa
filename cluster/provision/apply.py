"""apply: execute a cluster's plan step by step, reporting each step as an event.

Every step is atomic on its host (uploads are staged and verified before they replace
anything; Ray starts or it does not; Serve takes the whole config or keeps the old one), so
an interrupted apply leaves each host with some steps done and the rest as before, and the
events say exactly which. Running apply again converges.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from cluster.errors import MlopsError, TransportError
from cluster.events import Event
from cluster.fanout import fan_out
from cluster.inventory import Host
from cluster.provision.bootstrap import run_bootstrap
from cluster.provision.bundle import Bundle
from cluster.provision.events import HostSkipped, StepDone, StepFailed, StepStarted
from cluster.provision.leftovers import remove_leftovers
from cluster.provision.observe import serve_api
from cluster.provision.plan import ClusterPlan
from cluster.provision.ray_node import (
    read_secret_file,
    start_node,
    stop_node,
    write_file,
)
from cluster.provision.serve_move import RouteMove, move_routes, route_moves
from cluster.tls.nodes import node_texts
from cluster.transport import Connections

Emit = Callable[[Event], Awaitable[None]]
log = logging.getLogger("mlops_tui.apply")


class ClusterResult:
    """What happened to one cluster: the hosts that failed, and those left untouched."""

    def __init__(self) -> None:
        self.failed: set[str] = set()
        self.skipped: set[str] = set()


async def _step(
    emit: Emit, host: str, step: str, detail: str, work: Callable[[], Awaitable[str | None]]
) -> bool:
    await emit(StepStarted(host, step, detail))
    log.info("%s: %s started: %s", host, step, detail)
    start = time.perf_counter()
    try:
        note = await work()
    except (MlopsError, OSError) as exc:
        reason = exc.reason if isinstance(exc, TransportError) else str(exc)
        took = time.perf_counter() - start
        log.warning("%s: %s failed after %.1f s: %s", host, step, took, reason)
        await emit(StepFailed(host, step, reason, took))
        return False
    took = time.perf_counter() - start
    log.info("%s: %s done in %.1f s: %s", host, step, took, note or detail)
    await emit(StepDone(host, step, note or detail, took))
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
    if plan.errors or plan.observe_errors:
        for error in plan.errors:
            await emit(StepFailed(head.name, "preflight", error, 0.0))
        for error in plan.observe_errors:
            await emit(StepFailed(head.name, "observe", error, 0.0))
        result.failed.add(head.name)
        result.skipped |= {h.name for h in cluster.hosts} - result.failed
        for name in sorted(result.skipped):
            await emit(
                HostSkipped(
                    name, f"cluster {cluster.id} is blocked (see above); nothing was started"
                )
            )
        return result
    if head.name in result.failed:
        return await _skip_rest(result, cluster.hosts, f"head {head.name} is unreachable", emit)

    # 1. Ship code and models to every reachable host at once.
    issued: dict[str, str] = {}  # the cluster's certificate and key, once made (never shown)

    async def ship(host: Host) -> bool:
        try:
            transport = await connections.get(host.name)
        except TransportError as exc:
            await emit(StepFailed(host.name, "connect", exc.reason, 0.0))
            return False
        layout = plan.states[host.name].layout
        started = time.perf_counter()
        try:
            removed = await remove_leftovers(transport, layout)
        except TransportError as exc:
            await emit(StepFailed(host.name, "cleanup", exc.reason, 0.0))
            return False
        if removed:
            detail = f"{removed} files left by an interrupted run removed"
            await emit(StepDone(host.name, "cleanup", detail, time.perf_counter() - started))
        if plan.for_host(host.name, "bootstrap"):
            digest = plan.wheelhouse_digests.get(host.name)

            async def venv() -> str:
                return await run_bootstrap(transport, host, layout, digest)

            if not await _step(emit, host.name, "bootstrap", "make the venv", venv):
                return False  # without its venv, nothing else can run there
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
        for action in plan.for_host(host.name, "keys"):

            async def keys() -> None:
                assert plan.keys is not None  # planned with the keys
                path = layout.keys_file(cluster.id)
                await write_file(transport, path, plan.keys.dump(), private=True)

            ok = await _step(emit, host.name, "keys", action.detail, keys) and ok
        need = plan.tls.get(host.name)
        if need is not None:

            async def tls() -> str:
                assert need is not None
                texts = node_texts(connections.inventory, cluster, host, need.names, issued)
                for name, (text, private) in texts.items():
                    path = layout.tls_file(cluster.id, name)
                    await write_file(transport, path, text, private=private)
                return f"{', '.join(texts)} written ({need.detail})"

            ok = await _step(emit, host.name, "tls", need.detail, tls) and ok
        return ok

    reachable = [h for h in cluster.hosts if h.name in plan.states]
    async for host, ok in fan_out(reachable, ship, limit=concurrency):
        if isinstance(ok, Exception):  # a bug, not a host problem: say what it was
            await emit(StepFailed(host.name, "ship", f"{type(ok).__name__}: {ok}", 0.0))
        if ok is not True:
            result.failed.add(host.name)
    if head.name in result.failed:
        return await _skip_rest(result, cluster.hosts, f"head {head.name} failed", emit)

    # 2. The cluster's token (read from the head, or made once), then the head, then workers.
    layout = plan.states[head.name].layout
    token: list[str] = []  # filled by the step; a list so the secret stays out of events
    if any(plan.starts_ray(h.name) for h in reachable if h.name not in result.failed):

        async def read_token() -> str:
            head_transport = await connections.get(head.name)
            found = await read_secret_file(head_transport, layout.token_file(cluster.id))
            token.append(found or secrets.token_hex(32))
            return "existing token kept" if found else "new token made (never shown)"

        if not await _step(emit, head.name, "token", f"cluster {cluster.id}", read_token):
            result.failed.add(head.name)
            return await _skip_rest(result, cluster.hosts, "the cluster token is unknown", emit)
    if plan.starts_ray(head.name) and not await _ray_step(connections, plan, head, token, emit):
        result.failed.add(head.name)
        return await _skip_rest(
            result, cluster.hosts, f"Ray head on {head.name} did not start", emit
        )
    workers = [
        w
        for w in cluster.workers
        if w.name in plan.states and w.name not in result.failed and plan.starts_ray(w.name)
    ]

    async def join(worker: Host) -> bool:
        return await _ray_step(connections, plan, worker, token, emit)

    async for worker, ok in fan_out(workers, join, limit=concurrency):
        if isinstance(ok, Exception):
            await emit(StepFailed(worker.name, "start-ray", f"{type(ok).__name__}: {ok}", 0.0))
        if ok is not True:
            result.failed.add(worker.name)
    token.clear()  # kept no longer than needed; never logged

    # 3. Serve: the whole config in one PUT, then wait for every application to run.
    serve_actions = [a for a in plan.actions if a.kind == "serve"]
    if serve_actions or plan.starts_ray(head.name):
        config = plan.desired.serve_config(layout, bundle.sha256)

        async def deploy() -> str:
            moves: list[RouteMove] = []
            async with serve_api(connections, cluster, layout) as api:
                if not plan.starts_ray(head.name):  # a Ray just started serves nothing yet
                    moves = route_moves(config, await api.applications())
                if moves:  # another version goes live: beside the old one first
                    await move_routes(api, connections, cluster, config, moves)
                await api.deploy(config)
                try:
                    await api.wait_running([a["name"] for a in config["applications"]], timeout=300)
                except MlopsError as exc:
                    # Serve took the new config: the old one is gone, say so.
                    raise MlopsError(
                        f"Serve accepted the new config but it is not running: {exc}"
                    ) from exc
            said = "; ".join(a.detail for a in serve_actions) or "all applications running"
            if moves:
                said += "; " + ", ".join(map(str, moves)) + " (the new version ran first)"
            return said

        if not await _step(
            emit, head.name, "serve", f"{len(config['applications'])} applications", deploy
        ):
            result.failed.add(head.name)
    return result


async def _ray_step(
    connections: Connections, plan: ClusterPlan, host: Host, token: list[str], emit: Emit
) -> bool:
    """Install the cluster token (mode 600, over stdin), then start (or stop and start) Ray."""
    layout = plan.states[host.name].layout
    restart = bool(plan.for_host(host.name, "restart-ray"))
    cluster = plan.desired.cluster
    role = "head" if host.name == cluster.head.name else "worker"

    async def start() -> str:
        transport = await connections.get(host.name)
        await write_file(transport, layout.token_file(cluster.id), token[0], private=True)
        if restart:
            await stop_node(transport, layout, host)
        try:
            await start_node(transport, layout, cluster, host)
        except TransportError as exc:
            if restart:  # the old Ray is gone too: say so
                raise TransportError(
                    host.name, f"{exc.reason}; Ray on this host is stopped now"
                ) from None
            raise
        return f"Ray {role} running on {host.address} (token auth on)"

    return await _step(
        emit, host.name, "restart-ray" if restart else "start-ray", f"Ray {role}", start
    )


async def _skip_rest(
    result: ClusterResult, hosts: tuple[Host, ...], reason: str, emit: Emit
) -> ClusterResult:
    """The cluster cannot go on: its other hosts keep what was done so far and nothing more."""
    for host in hosts:
        if host.name not in result.failed:
            result.skipped.add(host.name)
            await emit(HostSkipped(host.name, f"{reason}; its remaining steps were not run"))
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
