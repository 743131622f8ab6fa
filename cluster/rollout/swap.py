"""swap: replace an app's live version behind gates, rolling back on its own when one fails.

1. Deploy the new version next to the live one (its own replica set; the live one untouched).
2. Wait until it really serves: real predictions on its preview route, not just RUNNING.
3. Pre-promotion: accuracy on the holdout sample stored with the model; optional shadow phase.
4. Shift traffic: at once (bluegreen: the route moves) or in canary steps, each followed by a
   bake during which the gates are evaluated on live telemetry.
5. Promote (retire the old replicas after a delay) or roll back: the route and weights go back
   to the old version in one PUT, and the new replicas are removed.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from cluster.errors import MlopsError, TransportError, UsageError
from cluster.events import Event
from cluster.gates import Gate
from cluster.inventory import App, Inventory
from cluster.models.store import ModelStore
from cluster.provision.observe import observe_host
from cluster.provision.topology import RayCluster, clusters_of
from cluster.rollout.gates_eval import GateResult, evaluate, figures
from cluster.rollout.history import History
from cluster.rollout.serve_state import AppServe, Deployed
from cluster.serve.api import ServeApiError
from cluster.serve.config import VersionSpec, preview_route, serve_app_name
from cluster.telemetry.collector import Collector, TelemetryFrame
from cluster.transport import Connections


@dataclass(frozen=True)
class SwapOptions:
    """How to swap: strategy, steps, bake and shadow durations, gates."""

    to_version: str
    strategy: str = "bluegreen"
    steps: tuple[int, ...] = (10, 50, 100)
    bake_s: float = 30.0
    shadow_s: float = 0.0
    gates: tuple[Gate, ...] = ()
    auto_rollback: bool = True
    retire_after_s: float = 0.0
    interval_s: float = 1.0


@dataclass(frozen=True)
class SwapStep(Event):
    """A phase of the swap happened (deploy, ready, holdout, shadow, shift, bake, promote, rollback)."""

    app: str
    cluster: str
    phase: str
    detail: str
    data: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class GatesChecked(Event):
    """Every gate's value and verdict at the end of a phase."""

    app: str
    cluster: str
    phase: str
    results: tuple[dict[str, Any], ...]
    passed: bool


@dataclass(frozen=True)
class SwapFinished(Event):
    """promoted, rolled_back (a gate failed), failed (an error; old version still live) or interrupted."""

    app: str
    outcome: str
    from_version: str | None
    to_version: str
    detail: str
    timings: dict[str, float] = field(default_factory=dict)


class GateFailed(Exception):
    """A gate failed; carries the results for the history."""

    def __init__(self, phase: str, results: list[GateResult]) -> None:
        super().__init__(phase)
        self.phase = phase
        self.results = results


async def swap(
    connections: Connections, store: ModelStore, app: App, options: SwapOptions, history: History
) -> AsyncIterator[Event]:
    inventory: Inventory = connections.inventory
    target = inventory.targets[app.target]
    clusters = clusters_of(inventory, target)
    new = store.get(app.model, options.to_version)  # verified before anything ships
    history.swap_id = history.swap_id or secrets.token_hex(4)
    size = target.rollout.batch if target.topology == "edge" else len(clusters)
    done: list[tuple[RayCluster, AppServe, Deployed]] = []
    failures = 0
    start = time.perf_counter()
    timings: dict[str, float] = {}
    old_version: str | None = None
    history.append("swap_started", app=app.name, to=options.to_version, strategy=options.strategy,
                   steps=list(options.steps), gates=[g.text for g in options.gates], target=target.name)  # fmt: skip
    try:
        for i in range(0, len(clusters), size):
            batch = clusters[i : i + size]
            for cluster in batch:
                try:
                    async for event in _swap_cluster(
                        connections, store, app, cluster, new, options, history, done, timings
                    ):
                        yield event
                except GateFailed as exc:
                    failures += 1
                    yield GatesChecked(
                        app.name,
                        cluster.id,
                        exc.phase,
                        tuple(r.to_dict() for r in exc.results),
                        False,
                    )
                    if not options.auto_rollback:
                        history.append(
                            "gate_failed", app=app.name, cluster=cluster.id, phase=exc.phase
                        )
                        yield SwapFinished(app.name, "gate_failed", old_version, options.to_version,
                                           f"gate failed in {exc.phase}; --no-auto-rollback: left as is for `rollback` or `promote`")  # fmt: skip
                        return
                    if target.topology != "edge" or failures > target.rollout.max_failures:
                        async for event in _rollback_all(app, done, history, timings):
                            if isinstance(event, SwapStep) and event.phase == "deploy":
                                old_version = old_version or event.data.get("previous")
                            yield event
                        history.append(
                            "swap_finished", app=app.name, outcome="rolled_back", phase=exc.phase
                        )
                        yield SwapFinished(app.name, "rolled_back", old_version, options.to_version,
                                           f"gate failed in {exc.phase}; every host is back on the old version", timings)  # fmt: skip
                        return
        history.append(
            "swap_finished",
            app=app.name,
            outcome="promoted",
            to=options.to_version,
            seconds=time.perf_counter() - start,
        )
        yield SwapFinished(
            app.name,
            "promoted",
            old_version,
            options.to_version,
            "the new version serves all traffic",
            timings,
        )
    except (MlopsError, OSError) as exc:
        reason = exc.reason if isinstance(exc, TransportError) else str(exc)
        async for event in _rollback_all(app, done, history, timings):
            yield event
        history.append("swap_finished", app=app.name, outcome="failed", error=reason)
        yield SwapFinished(
            app.name,
            "failed",
            old_version,
            options.to_version,
            f"{reason}; the old version stays live",
            timings,
        )
    except asyncio.CancelledError:
        # Ctrl-C or a lost console: put the old version back at 100% unless promotion completed.
        await asyncio.shield(_restore(done, history, app))
        raise


async def _swap_cluster(connections: Connections, store: ModelStore, app: App, cluster: RayCluster, new: Any,
                        options: SwapOptions, history: History, done: list[tuple[RayCluster, AppServe, Deployed]],
                        timings: dict[str, float]) -> AsyncIterator[Event]:  # fmt: skip
    head_state = await observe_host(connections, cluster.head)
    serve = AppServe(connections, cluster, head_state.layout, app)
    before = await serve.read()
    if before.live is None:
        raise UsageError(f"{app.name} is not deployed on {cluster.id}: run `mlops-tui apply` first")
    if before.live == options.to_version:
        raise UsageError(f"{app.name} already serves version {options.to_version} on {cluster.id}")
    old = before.versions[before.live]
    new_spec = VersionSpec(
        options.to_version,
        head_state.layout.model_dir(new.name, new.version),
        app.replicas,
        app.num_cpus,
    )
    record = (cluster, serve, before)
    done.append(record)

    def step(phase: str, detail: str, **data: Any) -> SwapStep:
        history.append("step", app=app.name, cluster=cluster.id, phase=phase, detail=detail, **data)
        return SwapStep(app.name, cluster.id, phase, detail, data)

    # 1. Ship the model and deploy the new version beside the live one.
    for host in cluster.hosts:
        state = await observe_host(connections, host)
        if state.models.get(f"{new.name}:{new.version}") != new.meta.sha256:
            transport = await connections.get(host.name)
            await transport.upload(new.path, state.layout.model_dir(new.name, new.version))
    both = [old, new_spec]
    await serve.wait_gone(
        [n for n in before.deleting if n == serve_app_name(app.name, options.to_version)]
    )
    try:
        await serve.write(
            serve.spec(old.version, both),
            before.others,
            wait_for=[serve_app_name(app.name, options.to_version)],
        )
    except ServeApiError as exc:
        raise MlopsError(
            f"version {options.to_version} did not start on {cluster.id} ({exc}); it never received traffic"
        ) from None
    yield step(
        "deploy",
        f"version {options.to_version} running beside {old.version} (no traffic)",
        previous=old.version,
    )

    # 2-3. It answers real predictions on its preview route; holdout accuracy before any traffic.
    holdout = _holdout(new.path)
    new_holdout = await _holdout_figures(
        connections,
        cluster,
        preview_route(app.route, options.to_version),
        holdout,
        options.to_version,
    )
    old_holdout = (
        await _holdout_figures(connections, cluster, app.route, holdout, old.version)
        if holdout
        else {}
    )
    yield step(
        "ready",
        f"version {options.to_version} answers predictions on its preview route",
        holdout=new_holdout,
    )
    accuracy_gates = [
        g for g in options.gates if g.metric in ("accuracy", "precision", "recall", "f1")
    ]
    if holdout and accuracy_gates:
        results = evaluate(accuracy_gates, new_holdout, old_holdout)
        yield GatesChecked(
            app.name,
            cluster.id,
            "holdout",
            tuple(r.to_dict() for r in results),
            all(r.passed for r in results),
        )
        if not all(r.passed for r in results):
            raise GateFailed("holdout", results)
    baseline: dict[str, float] = {}
    if options.shadow_s > 0:
        await serve.write(
            serve.spec(old.version, both, shadow=(options.to_version, 1.0)), before.others
        )
        yield step(
            "shadow", f"live traffic mirrored to {options.to_version} for {options.shadow_s:g}s"
        )
        frame = await _bake(connections, app, cluster, options, options.shadow_s)
        baseline = _figures(frame, old.version)
        await _check(
            app, cluster, "shadow", options.gates, _figures(frame, options.to_version), baseline
        )
        await serve.write(serve.spec(old.version, both), before.others)

    # 4. Shift traffic.
    shares = (
        (100,) if options.strategy == "bluegreen" else tuple(sorted(set(options.steps) | {100}))
    )
    for share in shares:
        t0 = time.perf_counter()
        if share >= 100:
            await serve.write(serve.spec(options.to_version, both), before.others)
            await _wait_live(connections, cluster, app, options.to_version)
            timings["to_100_s"] = time.perf_counter() - t0
        else:
            await serve.write(
                serve.spec(old.version, both, canary=(options.to_version, share / 100)),
                before.others,
            )
        yield step(
            "shift",
            f"{share}% of traffic on {options.to_version}",
            share=share,
            seconds=time.perf_counter() - t0,
        )
        if options.bake_s > 0 and options.gates:
            frame = await _bake(connections, app, cluster, options, options.bake_s)
            old_now = _figures(frame, old.version)
            baseline = old_now if old_now else baseline
            results = evaluate(
                list(options.gates), _figures(frame, options.to_version), baseline or old_holdout
            )
            ok = all(r.passed for r in results)
            yield GatesChecked(
                app.name, cluster.id, f"bake@{share}%", tuple(r.to_dict() for r in results), ok
            )
            history.append(
                "gates",
                app=app.name,
                cluster=cluster.id,
                phase=f"bake@{share}%",
                results=[r.to_dict() for r in results],
            )
            if not ok:
                raise GateFailed(f"bake@{share}%", results)

    # 5. Promoted: the old replicas stay for an instant rollback, then retire.
    if options.retire_after_s > 0:
        await asyncio.sleep(options.retire_after_s)
    await serve.write(serve.spec(options.to_version, [new_spec]), before.others)
    await serve.wait_gone(
        [serve_app_name(app.name, old.version)]
    )  # so a rollback can start it afresh
    done.remove(record)
    yield step("promote", f"{options.to_version} serves 100%; {old.version} retired")


async def _check(
    app: App,
    cluster: RayCluster,
    phase: str,
    gates: tuple[Gate, ...],
    new: dict[str, float],
    old: dict[str, float],
) -> None:
    results = evaluate(list(gates), new, old)
    if not all(r.passed for r in results):
        raise GateFailed(phase, results)


async def _rollback_all(app: App, done: list[tuple[RayCluster, AppServe, Deployed]], history: History,
                        timings: dict[str, float]) -> AsyncIterator[Event]:  # fmt: skip
    for cluster, serve, before in reversed(done):
        t0 = time.perf_counter()
        assert before.live is not None
        old = before.versions[before.live]
        await serve.write(
            serve.spec(before.live, [old]), before.others
        )  # route, weights: back in one PUT
        timings["rollback_s"] = time.perf_counter() - t0
        await serve.wait_gone(
            (await serve.read()).deleting
        )  # the new replicas are gone, not just idle
        history.append(
            "step",
            app=app.name,
            cluster=cluster.id,
            phase="rollback",
            detail=f"back to {before.live}",
        )
        yield SwapStep(
            app.name,
            cluster.id,
            "rollback",
            f"{before.live} serves 100% again",
            {"seconds": timings["rollback_s"]},
        )
    done.clear()


async def _restore(
    done: list[tuple[RayCluster, AppServe, Deployed]], history: History, app: App
) -> None:
    for cluster, serve, before in reversed(done):
        if before.live is not None:
            try:
                await serve.write(
                    serve.spec(before.live, [before.versions[before.live]]), before.others
                )
                history.append("swap_finished", app=app.name, cluster=cluster.id, outcome="interrupted",
                               detail=f"interrupted; {before.live} restored to 100%")  # fmt: skip
            except (MlopsError, OSError) as exc:
                history.append("swap_finished", app=app.name, cluster=cluster.id, outcome="interrupted",
                               detail=f"interrupted and the restore failed: {exc}; run `mlops-tui rollback {app.name}`")  # fmt: skip


def _holdout(path: Any) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((path / "holdout.json").read_text())
        return data
    except FileNotFoundError:
        return None


async def _holdout_figures(
    connections: Connections,
    cluster: RayCluster,
    route: str,
    holdout: dict[str, Any] | None,
    version: str,
) -> dict[str, float]:
    """POST the holdout rows to `route` until `version` answers; accuracy against their labels."""
    if not holdout:
        return {}
    transport = await connections.get(cluster.head.name)
    body = {"instances": holdout["X"]}
    async with (
        transport.forward(cluster.head.address, cluster.head.ray.serve_http) as (host, port),
        httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=30) as client,
    ):
        for attempt in range(20):
            response = await client.post(f"{route}/predict", json=body)
            if response.status_code == 200 and response.json().get("version") == version:
                break
            await asyncio.sleep(0.25 * (attempt + 1))
        else:
            raise MlopsError(
                f"{route}: version {version} does not answer predictions "
                f"(HTTP {response.status_code}: {response.text[:200]})"
            )
    predictions = response.json()["predictions"]
    labels = holdout["y"]
    correct = sum(1 for p, y in zip(predictions, labels, strict=False) if p == y)
    return {"accuracy": correct / len(labels)} if labels else {}


async def _wait_live(
    connections: Connections, cluster: RayCluster, app: App, version: str, timeout: float = 30
) -> None:
    transport = await connections.get(cluster.head.name)
    async with (
        transport.forward(cluster.head.address, cluster.head.ray.serve_http) as (host, port),
        httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=10) as client,
    ):
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            response = await client.get(f"{app.route}/version")
            if response.status_code == 200 and response.json().get("version") == version:
                return
            await asyncio.sleep(0.05)
    raise MlopsError(f"{app.route} did not move to version {version} within {timeout:g}s")


async def _bake(
    connections: Connections, app: App, cluster: RayCluster, options: SwapOptions, seconds: float
) -> TelemetryFrame:
    collector = Collector(
        connections,
        app,
        [cluster],
        interval=options.interval_s,
        window_s=seconds + options.interval_s,
    )
    last: TelemetryFrame | None = None
    async for frame in collector.frames(seconds):
        last = frame
    assert last is not None
    return last


def _figures(frame: TelemetryFrame, version: str) -> dict[str, float]:
    monitor = (frame.monitor or {}).get("versions", {}).get(version)
    return figures(frame.versions.get(version), monitor)
