"""swap: replace an app's live version behind gates, rolling back on its own when one fails.

Per cluster (an edge target's hosts go `rollout.batch` at a time, a batch's hosts at once):
1. Deploy the new version next to the live one (its own replicas; the live one untouched).
2. Wait until it really serves: real predictions on its preview route, not just RUNNING.
3. Pre-promotion: the gates on the model's stored holdout; optionally a shadow phase.
4. Shift traffic at once (bluegreen: the route moves) or in canary steps, each followed by a
   bake during which the gates are evaluated on live telemetry.
Then, once every cluster passed: the old replicas stay idle for `retire_after_s` (a rollback
until then is one route flip) and are retired. A failed gate puts the old version back: on
that host alone while an edge fleet stays within `max_failures`, everywhere otherwise.

On an edge fleet each host is its own failure domain: a host that errs (unreachable, its
telemetry lost, its version not starting) counts as a failure like a failed gate, goes back
if it can be reached, and is named if it cannot. Running the same swap again converges: a
host left mid-canary or mid-shadow toward this version is put back first, one already on it
is skipped (an old version left idle beside it is retired).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx

from cluster.errors import MlopsError, UsageError, reason_of
from cluster.events import Event
from cluster.gates import Gate, default_gate
from cluster.inventory import App
from cluster.lease import Leases, LeaseSpot, holding
from cluster.models.store import ModelStore, StoredVersion
from cluster.provision.observe import observe_host
from cluster.provision.topology import RayCluster, clusters_of
from cluster.rollout.events import (
    BakeProgress,
    GateFailed,
    GatesChecked,
    Strategy,
    SwapFinished,
    SwapOptions,
    SwapOutcome,
    SwapStep,
)
from cluster.rollout.gates_eval import ACCURACY, LATENCY, TRAFFIC, GateResult, evaluate, figures
from cluster.rollout.history import History, close_unfinished
from cluster.rollout.http_checks import Refused, holdout, predict_until, probe_rows, scores
from cluster.rollout.serve_state import AppServe
from cluster.rollout.versions import move_route, restore, retire_others, start_beside
from cluster.serve.api import ServeApiError
from cluster.serve.config import preview_route
from cluster.telemetry.collector import Collector, TelemetryFrame
from cluster.transport import Connections

BASELINE_MAX_S = 10.0  # the old version is measured alone at most this long before a shift
STALE_GRACE_S = 10.0  # a node stale when a bake ends has this long to answer again
_ERRORS = (MlopsError, OSError, httpx.HTTPError)  # what a rollback may meet, and survive


@dataclass
class _Cluster:
    """One cluster's part in a swap: what ran before, and how far it got."""

    cluster: RayCluster
    serve: AppServe
    old: str
    stage: str = "deploying"  # deploying -> shifted (new has 100%) -> retired
    last: str = "not started"  # its last step, "phase: detail" (recorded if the host fails)


@dataclass(frozen=True)
class _Done:
    """A cluster's swap ended: None when it passed, else why not."""

    cluster: RayCluster
    error: BaseException | None


async def swap(
    connections: Connections, store: ModelStore, app: App, options: SwapOptions, history: History
) -> AsyncIterator[Event]:
    """The swap, holding the app's lease on every cluster it may change, from before the first
    change until after the last (see cluster.lease): a second operator is refused, not mixed in."""
    inventory = connections.inventory
    spots = [LeaseSpot(app.name, c.id, c.head)
             for c in clusters_of(inventory, inventory.targets[app.target])]  # fmt: skip
    command = f"swap {app.name} --to {options.to_version}"
    leases = Leases(connections, spots, command, force=options.force)

    def note(_: LeaseSpot, text: str) -> Event:
        return SwapStep(app.name, app.target, "lease", text)

    def outcome(event: Event) -> bool:
        return isinstance(event, SwapFinished)

    events = _marked(leases, _swap(connections, store, app, options, history))
    async for event in holding(leases, note, events, outcome):
        yield event


async def _marked(
    leases: Leases, events: AsyncGenerator[Event, None]
) -> AsyncGenerator[Event, None]:
    """Each cluster's steps written into its lease as they happen (in the background): where
    a swap stopped is on the head, for `status` and the next operator."""
    async with contextlib.aclosing(events) as inner:
        async for event in inner:
            if isinstance(event, SwapStep) and event.phase != "lease":
                leases.mark(event.cluster, f"{event.phase}: {event.detail}")
            yield event


async def _swap(
    connections: Connections, store: ModelStore, app: App, options: SwapOptions, history: History
) -> AsyncGenerator[Event, None]:
    inventory = connections.inventory
    target = inventory.targets[app.target]
    clusters = clusters_of(inventory, target)
    new = store.get(app.model, options.to_version)  # verified before anything ships
    history.swap_id = history.swap_id or secrets.token_hex(4)
    gates_note = ""
    if options.no_gates:
        gates_note = "--no-gates: no gate judges this swap"
    elif not options.gates:
        options = replace(options, gates=(default_gate(new.meta.task),))
        gates_note = (f"{app.name} names no gates: the default holdout gate {options.gates[0].text} "
                      "judges this swap (name gates with --gate or in the inventory; --no-gates skips them)")  # fmt: skip
    edge = target.topology == "edge"
    size = target.rollout.batch if edge else len(clusters)
    allowed = target.rollout.max_failures if edge else 0
    touched: list[_Cluster] = []
    complete = False  # every cluster passed its gates: an interruption keeps the new version
    went_back: list[str] = []
    left: list[str] = []  # edge hosts that failed and could not be put back: left as they were
    timings: dict[str, float] = {}
    start = time.perf_counter()
    for said in close_unfinished(
        history.path, app.name, f"swap {app.name} --to {options.to_version}"
    ):
        yield SwapStep(app.name, target.name, "recover", said)
    history.append("swap_started", app=app.name, to=options.to_version, strategy=options.strategy,
                   steps=list(options.steps), gates=[g.text for g in options.gates], target=target.name,
                   **({"no_gates": True} if options.no_gates else {}))  # fmt: skip
    if gates_note:
        yield SwapStep(app.name, target.name, "gates", gates_note)

    def finished(outcome: SwapOutcome, detail: str) -> SwapFinished:
        old = touched[0].old if touched else None
        history.append("swap_finished", app=app.name, outcome=outcome, detail=detail, to=options.to_version,
                       rolled_back=went_back, seconds=time.perf_counter() - start, **{"from": old},
                       **({"left": left} if left else {}))  # fmt: skip
        return SwapFinished(
            app.name, outcome, old, options.to_version, detail, timings, tuple(went_back)
        )

    try:
        try:
            for i in range(0, len(clusters), size):
                failed: list[tuple[RayCluster, GateFailed]] = []
                erred: list[tuple[RayCluster, str]] = []  # edge hosts only: one host, one failure
                batch = _batch(connections, app, new, options, history, touched, timings, clusters[i : i + size])  # fmt: skip
                async with contextlib.aclosing(batch) as items:  # siblings stop before any rollback
                    async for item in items:
                        if isinstance(item, Event):
                            yield item
                        elif isinstance(item.error, GateFailed):
                            failed.append((item.cluster, item.error))
                        elif edge and _host_failure(item.error):
                            assert item.error is not None
                            erred.append((item.cluster, reason_of(item.error)))
                            yield _host_failed(
                                app, item.cluster, item.error, touched, history, allowed
                            )
                        elif item.error is not None:
                            raise item.error
                phases = ", ".join([f"{c.id} in {e.phase}" for c, e in failed] +
                                   [f"{c.id}: {why}" for c, why in erred])  # fmt: skip
                failing = {c.id for c, _ in failed} | {c.id for c, _ in erred}
                if failed and not erred and not options.auto_rollback:
                    yield finished(SwapOutcome.GATE_FAILED, f"a gate failed ({phases}); --no-auto-rollback: left as is: "
                                   f"`mlops-tui rollback {app.name}` goes back, `abort` stops a canary, "
                                   f"`promote` gives the new version 100%")  # fmt: skip
                    return
                what = (
                    "a gate failed"
                    if not erred
                    else "a host failed"
                    if not failed
                    else "hosts failed"
                )
                if len(went_back) + len(left) + len(failing) > allowed:
                    stuck: list[str] = []
                    async for event in _roll_back_quietly(connections, store, app, touched, history, timings, went_back, stuck):  # fmt: skip
                        yield event
                    if stuck:
                        left.extend(stuck)
                        yield finished(SwapOutcome.FAILED, f"{what} ({phases}); every host is back on the old "
                                       f"version but {', '.join(stuck)}, which could not be reached: {_AGAIN}")  # fmt: skip
                        return
                    yield finished(
                        SwapOutcome.ROLLED_BACK,
                        f"{what} ({phases}); every host is back on the old version",
                    )
                    return
                back = [r for r in touched if r.cluster.id in failing]
                stuck = []
                async for event in _roll_back_quietly(connections, store, app, back, history, timings, went_back, stuck):  # fmt: skip
                    yield event  # within max_failures: these hosts alone go back; the fleet goes on
                left.extend(stuck)
                # A host that failed before touching anything has nothing to put back.
                went_back.extend(c for c in failing if c not in went_back and c not in stuck)
            complete = True
            async for event in _retire(app, touched, options, history):
                yield event
            if went_back or left:
                but = [f"{', '.join(went_back)} (failed and went back)"] if went_back else []
                but += (
                    [f"{', '.join(left)} (failed and could not be reached: {_AGAIN})"]
                    if left
                    else []
                )
                yield finished(SwapOutcome.PARTIAL, f"{options.to_version} serves on every host but "
                               f"{'; '.join(but)}; within max_failures {allowed}")  # fmt: skip
            else:
                yield finished(SwapOutcome.PROMOTED, "the new version serves all traffic")
        except Exception as exc:  # whatever went wrong, the old version goes back first
            if isinstance(exc, UsageError) and not touched:
                history.append(
                    "swap_finished", app=app.name, outcome=SwapOutcome.REFUSED, detail=str(exc)
                )
                raise  # nothing changed anywhere: an invalid request (exit 2)
            reason = reason_of(exc)
            if complete:
                yield finished(SwapOutcome.RETIRE_FAILED, f"{options.to_version} serves all traffic, but retiring "
                               f"the old replicas failed: {reason}; `mlops-tui promote {app.name}` retires them")  # fmt: skip
                return
            stuck = []
            async for event in _roll_back_quietly(connections, store, app, touched, history, timings, went_back, stuck):  # fmt: skip
                yield event
            if stuck:
                yield finished(SwapOutcome.FAILED, f"{reason}; restoring the old version failed on {', '.join(stuck)}: "
                               f"run `mlops-tui rollback {app.name}` there")  # fmt: skip
            else:
                yield finished(SwapOutcome.FAILED, f"{reason}; the old version stays live")
    except asyncio.CancelledError:
        # Ctrl-C or a lost console, in any phase (a rollback included): the old version back at
        # 100% unless every cluster had passed. Not shielded: the restore must finish before
        # the run ends (asyncio.run waits for it; a second Ctrl-C stops it).
        await _interrupted(connections, store, app, touched, history, complete)
        raise


_AGAIN = "it is left as it was; run the same swap again (or `rollback`) once it is back"


def _host_failure(exc: BaseException | None) -> bool:
    """An edge host's own trouble (unreachable, telemetry lost, a version that would not start),
    counted against max_failures; a refusal (UsageError) or a bug stops the whole swap."""
    return isinstance(exc, _ERRORS) and not isinstance(exc, UsageError)


def _host_failed(app: App, cluster: RayCluster, exc: BaseException, touched: list[_Cluster],
                 history: History, allowed: int) -> SwapStep:  # fmt: skip
    """Recorded per host: what went wrong and how far its swap had got."""
    at = next((r.last for r in touched if r.cluster.id == cluster.id), "not started")
    reason = reason_of(exc)
    history.append("step", app=app.name, cluster=cluster.id, phase="host_failed", detail=reason,
                   at=at)  # fmt: skip
    return SwapStep(app.name, cluster.id, "host_failed",
                    f"{reason} (after {at}); counted as a failure, max_failures {allowed}",
                    {"at": at})  # fmt: skip


async def _batch(connections: Connections, app: App, new: StoredVersion, options: SwapOptions,
                 history: History, touched: list[_Cluster], timings: dict[str, float],
                 batch: list[RayCluster]) -> AsyncGenerator[Event | _Done, None]:  # fmt: skip
    """Swap a batch's clusters at once; their events interleave, then one _Done each.
    Closing it early cancels the clusters still running (their records stay in `touched`)."""
    queue: asyncio.Queue[Event | _Done] = asyncio.Queue()

    async def one(cluster: RayCluster) -> None:
        error: BaseException | None = None
        try:
            async for event in _swap_cluster(
                connections, app, cluster, new, options, history, touched, timings
            ):
                await queue.put(event)
        except Exception as exc:  # noqa: BLE001 - reported to swap(), which rolls back
            error = exc
        await queue.put(_Done(cluster, error))

    tasks = [asyncio.create_task(one(c)) for c in batch]
    try:
        for _ in range(len(batch)):
            while not isinstance(item := await queue.get(), _Done):
                yield item
            yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _swap_cluster(connections: Connections, app: App, cluster: RayCluster, new: StoredVersion,
                        options: SwapOptions, history: History, touched: list[_Cluster],
                        timings: dict[str, float]) -> AsyncIterator[Event]:  # fmt: skip
    head_state = await observe_host(connections, cluster.head)
    serve = AppServe(connections, cluster, head_state.layout, app)
    state = await serve.read()
    if state.live is None:
        raise UsageError(f"{app.name} is not deployed on {cluster.id}: run `mlops-tui apply` first")
    if state.live == options.to_version:
        if cluster.target.topology == "edge":  # e.g. a swap run again after a partial one
            detail = f"already serves {options.to_version}"
            if len(state.versions) > 1:  # an earlier swap cut off before it retired them
                gone = await retire_others(serve, state)
                detail += f"; retired {', '.join(gone)}, left idle by an earlier swap"
            history.append("step", app=app.name, cluster=cluster.id, phase="skip", detail=detail)
            yield SwapStep(app.name, cluster.id, "skip", detail)
            return
        raise UsageError(f"{app.name} already serves version {options.to_version} on {cluster.id}")
    trial = state.canary or state.shadow
    if trial is not None and trial[0] == options.to_version:
        # An earlier swap to this version was cut off mid-way (its host lost, its process
        # killed): the live version gets everything back, and this swap starts over.
        seconds = await restore(connections, serve, state.live, None)
        detail = (f"{state.live} back to 100% ({options.to_version} was left in a "
                  f"{'canary' if state.canary else 'shadow'} by an earlier swap); starting over")  # fmt: skip
        history.append("step", app=app.name, cluster=cluster.id, phase="recover", detail=detail,
                       seconds=seconds)  # fmt: skip
        yield SwapStep(app.name, cluster.id, "recover", detail, {"seconds": seconds})
        state = await serve.read()
    if state.canary or state.shadow:
        raise UsageError(
            f"{app.name} on {cluster.id} is in a canary or shadow phase: `promote` or `abort` it first"
        )
    old = state.live
    if old is None:  # read again after putting a cut-off swap back
        raise MlopsError(f"{app.name} has no live version on {cluster.id}")
    record = _Cluster(cluster, serve, old)
    touched.append(record)

    def step(phase: str, detail: str, **data: Any) -> SwapStep:
        record.last = f"{phase}: {detail}"
        history.append("step", app=app.name, cluster=cluster.id, phase=phase, detail=detail, **data)
        return SwapStep(app.name, cluster.id, phase, detail, data)

    def checked(phase: str, results: list[GateResult]) -> GatesChecked:
        passed = all(r.passed for r in results)
        history.append("gates", app=app.name, cluster=cluster.id, phase=phase, passed=passed,
                       results=[r.to_dict() for r in results])  # fmt: skip
        return GatesChecked(app.name, cluster.id, phase, tuple(results), passed)

    # 1. The new version beside the live one, on its preview route only.
    try:
        await start_beside(connections, serve, state, new)
    except ServeApiError as exc:
        raise MlopsError(f"version {options.to_version} did not start on {cluster.id} ({exc}); "
                         "it never received traffic") from None  # fmt: skip
    yield step(
        "deploy", f"version {options.to_version} running beside {old} (no traffic)", previous=old
    )

    # 2. It answers real predictions; 3. the gates it can be judged on before any traffic.
    labelled = holdout(new)
    preview = preview_route(app.route, options.to_version)
    answer = await predict_until(connections, cluster, app.name, preview,
                                 probe_rows(new, labelled), options.to_version,
                                 max_rows=app.max_rows)  # fmt: skip
    new_holdout = scores(new, labelled, answer) if labelled else {}
    old_holdout: dict[str, float] = {}
    if labelled:
        try:  # the old version on the new one's holdout: the baseline for relative gates
            old_answer = await predict_until(connections, cluster, app.name, app.route,
                                             labelled["X"], old,
                                             max_rows=app.max_rows)  # fmt: skip
            old_holdout = scores(new, labelled, old_answer)
        except Refused as exc:  # e.g. other features: relative gates will say there is no baseline
            yield step("holdout", f"{old} cannot score the holdout ({exc})")
    yield step(
        "ready",
        f"version {options.to_version} answers predictions on {preview}",
        holdout=new_holdout,
    )
    offline = [g for g in options.gates if g.metric in new_holdout]
    unjudged = [g for g in options.gates if g.holdout_only and g.metric not in new_holdout]
    if offline or unjudged:
        results = evaluate(offline, new_holdout, old_holdout)
        results += [GateResult(g.text, None, None, False, f"version {options.to_version} has no "
                               "holdout to judge it on; name gates (--gate) or skip them (--no-gates)")
                    for g in unjudged]  # fmt: skip
        yield checked("holdout", results)
        if not all(r.passed for r in results):
            raise GateFailed("holdout", results)

    # The old version alone, as the baseline for relative gates on live traffic.
    baseline = dict(old_holdout)
    live_relative = [g for g in options.gates if g.relative and g.metric in LATENCY | TRAFFIC]
    if live_relative and options.bake_s > 0:
        seconds = min(options.bake_s, BASELINE_MAX_S)
        async for item in _bake(connections, app, cluster, options, seconds, "baseline"):
            if isinstance(item, BakeProgress):
                yield item
            else:
                frame = item
        baseline.update({k: v for k, v in _figures(frame, old).items() if k not in ACCURACY})
        yield step("baseline", f"{old} measured alone for {seconds:g}s", figures=baseline)

    if options.shadow_s > 0:
        both = list(state.versions.values())
        await serve.write(serve.spec(old, both, shadow=(options.to_version, 1.0)))
        state.shadow = (options.to_version, 1.0)
        yield step(
            "shadow", f"live traffic mirrored to {options.to_version} for {options.shadow_s:g}s"
        )

        def so_far(frame: TelemetryFrame) -> list[GateResult]:
            return _judge(options.gates, frame, options.to_version, old, baseline, partial=True)

        async for item in _bake(
            connections, app, cluster, options, options.shadow_s, "shadow", so_far
        ):
            if isinstance(item, BakeProgress):
                yield item
            else:
                frame = item
        await serve.write(serve.spec(old, both))
        state.shadow = None
        results = _judge(options.gates, frame, options.to_version, old, baseline, partial=True)
        yield checked("shadow", results)
        if not all(r.passed for r in results):
            raise GateFailed("shadow", results)

    # 4. Shift traffic, baking after each step.
    shares = (
        (100,) if options.strategy == Strategy.BLUEGREEN else tuple(sorted({*options.steps, 100}))
    )
    for share in shares:
        if share >= 100:
            seconds = await move_route(connections, serve, state, options.to_version, retire=False)
            record.stage = "shifted"
            timings["to_100_s"] = max(timings.get("to_100_s", 0.0), seconds)
        else:
            t0 = time.perf_counter()
            versions = list(state.versions.values())
            await serve.write(serve.spec(old, versions, canary=(options.to_version, share / 100)))
            state.canary = (options.to_version, share / 100)
            seconds = time.perf_counter() - t0
        yield step(
            "shift", f"{share}% of traffic on {options.to_version}", share=share, seconds=seconds
        )
        if options.bake_s > 0 and not any(not g.holdout_only for g in options.gates):
            # No gate to judge on live traffic: the bake is a time to watch, and it is kept
            # (lost telemetry does not stop it: there is nothing to judge).
            async for item in _bake(connections, app, cluster, options, options.bake_s,
                                    f"bake@{share}%", need_telemetry=False):  # fmt: skip
                if isinstance(item, BakeProgress):
                    yield item
        elif options.bake_s > 0:

            def live(frame: TelemetryFrame) -> list[GateResult]:
                return _judge(options.gates, frame, options.to_version, old, baseline, partial=True)

            async for item in _bake(connections, app, cluster, options, options.bake_s,
                                    f"bake@{share}%", live):  # fmt: skip
                if isinstance(item, BakeProgress):
                    yield item
                else:
                    frame = item
            results = _judge(options.gates, frame, options.to_version, old, baseline, partial=False)
            yield checked(f"bake@{share}%", results)
            if not all(r.passed for r in results):
                raise GateFailed(f"bake@{share}%", results)
    yield step(
        "promote", f"{options.to_version} serves 100% ({old} kept, idle, for an instant rollback)"
    )


def _judge(gates: tuple[Gate, ...], frame: TelemetryFrame, new: str, old: str,
           baseline: dict[str, float], *, partial: bool) -> list[GateResult]:  # fmt: skip
    """Gates on the new version's live figures against the baseline; the old version's own
    live accuracy (labels keep arriving for it) replaces its holdout figure once it has as
    many labels as the gates ask of the new one. Holdout-only gates were judged already.

    partial: a gate with no figure yet, or short of its labels, is reported, not failed (a
    shadow sees no errors of its own answers and may have no labels yet; every gate is checked
    again after each shift, and then a gate still short of labels fails)."""
    live = [g for g in gates if not g.holdout_only]
    need = max((g.min_labels for g in live if g.metric in ACCURACY), default=0)
    old_live = {k: v for k, v in _figures(frame, old).items() if k in ACCURACY}
    reference = {**baseline, **(old_live if _labels(frame, old) >= need else {})}
    new_figures = _figures(frame, new)
    judged = [g for g in live if g.metric in new_figures] if partial else live
    results = evaluate(judged, new_figures, reference, _labels(frame, new), final=not partial)
    if partial:
        results += [GateResult(g.text, None, None, True, "not measured yet; checked after each shift")
                    for g in live if g not in judged]  # fmt: skip
    return results


def _labels(frame: TelemetryFrame, version: str) -> int:
    quality = frame.quality(version)
    return quality.last_n.n if quality is not None else 0


async def _retire(app: App, touched: list[_Cluster], options: SwapOptions,
                  history: History) -> AsyncIterator[Event]:  # fmt: skip
    """Every cluster passed: the old replicas wait `retire_after_s`, idle, then go."""
    promoted = [r for r in touched if r.stage == "shifted"]
    if not promoted:
        return
    if options.retire_after_s > 0:
        yield SwapStep(app.name, app.target, "retire", f"old replicas retire in {options.retire_after_s:g}s; "
                       f"until then `mlops-tui rollback {app.name}` is one route flip")  # fmt: skip
        await asyncio.sleep(options.retire_after_s)
    for record in promoted:
        state = await record.serve.read()
        if state.live != options.to_version:  # someone rolled back meanwhile: theirs to keep
            history.append("step", app=app.name, cluster=record.cluster.id, phase="retire",
                           detail=f"not retiring: the route is on {state.live} now")  # fmt: skip
            yield SwapStep(
                app.name, record.cluster.id, "retire", f"not retiring: {state.live} is live now"
            )
            continue
        gone = await retire_others(record.serve, state)
        record.stage = "retired"
        history.append(
            "step", app=app.name, cluster=record.cluster.id, phase="retire", retired=gone
        )
        yield SwapStep(
            app.name, record.cluster.id, "retire", f"retired {', '.join(gone) or 'nothing'}"
        )


async def _roll_back(connections: Connections, store: ModelStore, app: App, records: list[_Cluster],
                     history: History, timings: dict[str, float],
                     went_back: list[str]) -> AsyncIterator[Event]:  # fmt: skip
    """These clusters back on their old version (restarted first if it was retired)."""
    for record in reversed(records):
        if record.cluster.id in went_back:
            continue
        seconds = await restore(connections, record.serve, record.old, store)
        timings["rollback_s"] = max(timings.get("rollback_s", 0.0), seconds)
        record.stage = "rolled_back"
        went_back.append(record.cluster.id)
        history.append("step", app=app.name, cluster=record.cluster.id, phase="rollback",
                       detail=f"back to {record.old}", seconds=seconds)  # fmt: skip
        yield SwapStep(app.name, record.cluster.id, "rollback", f"{record.old} serves 100% again",
                       {"seconds": seconds})  # fmt: skip


async def _roll_back_quietly(connections: Connections, store: ModelStore, app: App, records: list[_Cluster],
                             history: History, timings: dict[str, float], went_back: list[str],
                             stuck: list[str]) -> AsyncIterator[Event]:  # fmt: skip
    """After an error: roll back what can be; a cluster that cannot is named in `stuck`."""
    for record in reversed(records):
        try:
            async for event in _roll_back(
                connections, store, app, [record], history, timings, went_back
            ):
                yield event
        except _ERRORS as exc:
            stuck.append(record.cluster.id)
            history.append("step", app=app.name, cluster=record.cluster.id, phase="rollback_failed",
                           detail=f"{exc}; run `mlops-tui rollback {app.name} --to {record.old}`")  # fmt: skip
            yield SwapStep(app.name, record.cluster.id, "rollback_failed",
                           f"could not restore {record.old}: {exc}; run `mlops-tui rollback {app.name} --to {record.old}`")  # fmt: skip


async def _interrupted(connections: Connections, store: ModelStore, app: App, touched: list[_Cluster],
                       history: History, complete: bool) -> None:  # fmt: skip
    """Cancelled: unless every cluster had passed, each goes back; the history says what held."""

    def note(cluster: str, detail: str) -> None:
        history.append(
            "swap_finished",
            app=app.name,
            cluster=cluster,
            outcome=SwapOutcome.INTERRUPTED,
            detail=detail,
        )

    if not touched:
        note(app.target, "interrupted before anything changed")
    for record in reversed(touched):
        cluster = record.cluster.id
        if record.stage == "rolled_back":
            note(cluster, f"interrupted; already back on {record.old}")
        elif complete:
            note(cluster, "interrupted after every host passed; the new version stays live")
        else:
            try:
                await restore(connections, record.serve, record.old, store)
                note(cluster, f"interrupted; {record.old} restored to 100%")
            except _ERRORS as exc:
                note(cluster, f"interrupted and the restore failed: {reason_of(exc)}; "
                     f"run `mlops-tui rollback {app.name} --to {record.old}`")  # fmt: skip


async def _bake(connections: Connections, app: App, cluster: RayCluster, options: SwapOptions,
                seconds: float, phase: str,
                judge: Callable[[TelemetryFrame], list[GateResult]] | None = None,
                *, need_telemetry: bool = True,
                ) -> AsyncIterator[BakeProgress | TelemetryFrame]:  # fmt: skip
    """A BakeProgress every interval (with `judge`'s gate values so far), then the last frame
    after `seconds`. A node silent for STALE_GRACE_S during the bake fails it at once; one
    gone stale at the end gets STALE_GRACE_S more (a busy node's digest comes late), then the
    bake fails as an error (lost telemetry must never pass for a failed gate). A gate with no
    figure yet, or short of its labels, at the end gets the same grace, then is judged as it is.
    Without `need_telemetry` (nothing to judge) the last frame ends the bake as it is."""
    collector = Collector(connections, app, [cluster], interval=options.interval_s,
                          window_s=seconds + options.interval_s)  # fmt: skip
    loop = asyncio.get_running_loop()
    start = loop.time()
    end = start + seconds
    extra = 0
    stale_since: float | None = None
    heard: set[str] = set()
    stream = collector.frames()
    try:
        async for frame in stream:
            if loop.time() < end:
                # A node silent for STALE_GRACE_S stops the bake there and then: traffic is on
                # the new version and no one can see how it does.
                # (Only a node heard once in this bake: a digest takes a while to start.)
                heard.update(n for n in frame.nodes if n not in frame.stale_nodes)
                silent = [n for n in frame.stale_nodes if n in heard]
                if need_telemetry and silent:
                    stale_since = loop.time() if stale_since is None else stale_since
                    if loop.time() - stale_since > STALE_GRACE_S:
                        raise MlopsError(f"telemetry from {', '.join(silent)} was lost "
                                         f"during the bake ({'; '.join(frame.errors)}); the gates "
                                         "could not be judged")  # fmt: skip
                else:
                    stale_since = None
                results = tuple(judge(frame)) if judge else ()
                yield BakeProgress(
                    app.name, cluster.id, phase, loop.time() - start, seconds, results
                )
                continue
            stale = frame.stale_nodes if need_telemetry else []
            grace = extra < max(3, STALE_GRACE_S / options.interval_s)
            # After a shift, a gate with no figure at all yet (threshold None: not measured,
            # unlike one waiting for labels) most often means Ray has not exported the new
            # replicas' first figures on a busy node: it gets the same grace as a late digest.
            # (A shadow's missing figures are expected, and judged after the shifts.)
            # A quality gate still short of its labels gets the same grace: the labels of the
            # bake's last seconds are often on their way (clients label after the answer).
            unmeasured = (
                judge is not None
                and phase.startswith("bake@")
                and any(r.pending for r in judge(frame))
            )
            if not stale and (not unmeasured or not grace):
                yield frame
                return
            extra += 1
            if stale and not grace:
                raise MlopsError(f"telemetry from {', '.join(stale)} was lost during the bake "
                                 f"({'; '.join(frame.errors)}); the gates could not be judged")  # fmt: skip
    finally:
        await stream.aclose()
    raise MlopsError(f"no telemetry from {cluster.id} during the bake")


def _figures(frame: TelemetryFrame, version: str) -> dict[str, float]:
    return figures(frame.versions.get(version), frame.quality(version))
