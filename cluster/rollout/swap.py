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

One `SwapRun` object carries a swap from start to end; each cluster's part is a
`ClusterSwap` whose moves follow the state machine of cluster.rollout.phases, and each step
is written into the swap's lease on that cluster's head (where `status` reads it).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from cluster.errors import MlopsError, UsageError, reason_of
from cluster.events import Event
from cluster.gates import default_gate
from cluster.inventory import App, Target
from cluster.lease import Leases, LeaseSpot, holding
from cluster.models.store import ModelStore, StoredVersion
from cluster.provision.observe import observe_host
from cluster.provision.topology import RayCluster, clusters_of
from cluster.rollout.bake import bake, judge, version_figures
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
from cluster.rollout.gates_eval import ACCURACY, LATENCY, TRAFFIC, GateResult, evaluate
from cluster.rollout.history import History, close_unfinished
from cluster.rollout.http_checks import Refused, holdout, predict_until, probe_rows, scores
from cluster.rollout.phases import ClusterSwap, Phase
from cluster.rollout.serve_state import AppServe, Deployed
from cluster.rollout.versions import move_route, restore, retire_others, start_beside
from cluster.serve.api import ServeApiError
from cluster.serve.config import preview_route
from cluster.telemetry.collector import TelemetryFrame
from cluster.transport import Connections
from serving.schema import narrowed

BASELINE_MAX_S = 10.0  # the old version is measured alone at most this long before a shift
# A failed edge host is asked something trivial before its rollback: one frozen or cut off
# answers nothing (its TCP connection may stay open), and is named at once instead.
REACH_S = 5.0
LOST_RESTORE_S = 60.0  # and its restore, once it answered, is bounded too
_ERRORS = (MlopsError, OSError, httpx.HTTPError)  # what a rollback may meet, and survive
_AGAIN = "it is left as it was; run the same swap again (or `rollback`) once it is back"


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

    run = SwapRun(connections, store, app, options, history)
    async for event in holding(leases, note, _marked(leases, run.events()), outcome):
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


@dataclass
class SwapRun:
    """One swap from start to end: what was asked, and each cluster's part so far."""

    connections: Connections
    store: ModelStore
    app: App
    options: SwapOptions
    history: History
    touched: list[ClusterSwap] = field(default_factory=list)  # clusters it changed, in order
    went_back: list[str] = field(default_factory=list)  # put back on the old version
    left: list[str] = field(default_factory=list)  # edge hosts failed and unreachable
    erred: set[str] = field(default_factory=set)  # edge hosts that failed on their own
    timings: dict[str, float] = field(default_factory=dict)
    complete: bool = False  # every cluster passed: an interruption keeps the new version
    new: StoredVersion = field(init=False)  # the version swapped to, read when the run starts
    start: float = field(init=False, default=0.0)

    @property
    def target(self) -> Target:
        return self.connections.inventory.targets[self.app.target]

    # -- the whole target ----------------------------------------------------------------

    async def events(self) -> AsyncGenerator[Event, None]:
        """The swap's events, to the last (SwapFinished); cancelled, it puts the old version
        back before it ends (unless every cluster had passed)."""
        app, options, history, target = self.app, self.options, self.history, self.target
        clusters = clusters_of(self.connections.inventory, target)
        self.new = self.store.get(app.model, options.to_version)  # verified before it ships
        history.swap_id = history.swap_id or secrets.token_hex(4)
        gates_note = ""
        if options.no_gates:
            gates_note = "--no-gates: no gate judges this swap"
        elif not options.gates:
            self.options = options = replace(options, gates=(default_gate(self.new.meta.task),))
            gates_note = (f"{app.name} names no gates: the default holdout gate {options.gates[0].text} "
                          "judges this swap (name gates with --gate or in the inventory; --no-gates skips them)")  # fmt: skip
        edge = target.topology == "edge"
        size = target.rollout.batch if edge else len(clusters)
        allowed = target.rollout.max_failures if edge else 0
        self.start = time.perf_counter()
        for said in close_unfinished(
            history.path, app.name, f"swap {app.name} --to {options.to_version}"
        ):
            yield SwapStep(app.name, target.name, "recover", said)
        history.append("swap_started", app=app.name, to=options.to_version, strategy=options.strategy,
                       steps=list(options.steps), gates=[g.text for g in options.gates], target=target.name,
                       **({"no_gates": True} if options.no_gates else {}))  # fmt: skip
        if gates_note:
            yield SwapStep(app.name, target.name, "gates", gates_note)
        try:
            try:
                for i in range(0, len(clusters), size):
                    failed: list[tuple[RayCluster, GateFailed]] = []
                    erred: list[tuple[RayCluster, str]] = []  # edge hosts: one host, one failure
                    # Closed before any rollback: the batch's other clusters stop first.
                    async with contextlib.aclosing(self._batch(clusters[i : i + size])) as items:
                        async for item in items:
                            if isinstance(item, Event):
                                yield item
                            elif isinstance(item.error, GateFailed):
                                failed.append((item.cluster, item.error))
                            elif edge and _host_failure(item.error):
                                assert item.error is not None
                                erred.append((item.cluster, reason_of(item.error)))
                                yield self._host_failed(item.cluster, item.error, allowed)
                            elif item.error is not None:
                                raise item.error
                    ended = False
                    async for event in self._after_batch(failed, erred, allowed):
                        yield event
                        ended = ended or isinstance(event, SwapFinished)
                    if ended:
                        return
                self.complete = True
                async for event in self._retire():
                    yield event
                if self.went_back or self.left:
                    but = (
                        [f"{', '.join(self.went_back)} (failed and went back)"]
                        if self.went_back
                        else []
                    )
                    but += (
                        [f"{', '.join(self.left)} (failed and could not be reached: {_AGAIN})"]
                        if self.left
                        else []
                    )
                    yield self._finished(SwapOutcome.PARTIAL, f"{options.to_version} serves on every host but "
                                         f"{'; '.join(but)}; within max_failures {allowed}")  # fmt: skip
                else:
                    yield self._finished(SwapOutcome.PROMOTED, "the new version serves all traffic")
            except Exception as exc:  # whatever went wrong, the old version goes back first
                if isinstance(exc, UsageError) and not self.touched:
                    history.append(
                        "swap_finished", app=app.name, outcome=SwapOutcome.REFUSED, detail=str(exc)
                    )
                    raise  # nothing changed anywhere: an invalid request (exit 2)
                reason = reason_of(exc)
                if self.complete:
                    yield self._finished(SwapOutcome.RETIRE_FAILED, f"{options.to_version} serves all traffic, but retiring "
                                         f"the old replicas failed: {reason}; `mlops-tui promote {app.name}` retires them")  # fmt: skip
                    return
                stuck: list[str] = []
                async for event in self._roll_back_quietly(self.touched, stuck):
                    yield event
                if stuck:
                    yield self._finished(SwapOutcome.FAILED, f"{reason}; restoring the old version failed on {', '.join(stuck)}: "
                                         f"run `mlops-tui rollback {app.name}` there")  # fmt: skip
                else:
                    yield self._finished(
                        SwapOutcome.FAILED, f"{reason}; the old version stays live"
                    )
        except asyncio.CancelledError:
            # Ctrl-C or a lost console, in any phase (a rollback included): the old version
            # back at 100% unless every cluster had passed. Not shielded: the restore must
            # finish before the run ends (asyncio.run waits for it; a second Ctrl-C stops it).
            await self._interrupted()
            raise

    async def _after_batch(self, failed: list[tuple[RayCluster, GateFailed]],
                           erred: list[tuple[RayCluster, str]],
                           allowed: int) -> AsyncGenerator[Event, None]:  # fmt: skip
        """A batch's failures: within max_failures those hosts go back and the fleet goes on;
        past it, every host goes back and the swap ends here (its SwapFinished comes last)."""
        app, options = self.app, self.options
        if not failed and not erred:
            return
        phases = ", ".join([f"{c.id} in {e.phase}" for c, e in failed] +
                           [f"{c.id}: {why}" for c, why in erred])  # fmt: skip
        failing = {c.id for c, _ in failed} | {c.id for c, _ in erred}
        if failed and not erred and not options.auto_rollback:
            yield self._finished(SwapOutcome.GATE_FAILED, f"a gate failed ({phases}); --no-auto-rollback: left as is: "
                                 f"`mlops-tui rollback {app.name}` goes back, `abort` stops a canary, "
                                 f"`promote` gives the new version 100%")  # fmt: skip
            return
        what = "a gate failed" if not erred else "a host failed" if not failed else "hosts failed"
        stuck: list[str] = []
        if len(self.went_back) + len(self.left) + len(failing) > allowed:
            async for event in self._roll_back_quietly(self.touched, stuck):
                yield event
            if stuck:
                self.left.extend(c for c in stuck if c not in self.left)
                yield self._finished(SwapOutcome.FAILED, f"{what} ({phases}); every host is back on the old "
                                     f"version but {', '.join(stuck)}, which could not be reached: {_AGAIN}")  # fmt: skip
            else:
                yield self._finished(
                    SwapOutcome.ROLLED_BACK,
                    f"{what} ({phases}); every host is back on the old version",
                )
            return
        back = [r for r in self.touched if r.cluster.id in failing]
        async for event in self._roll_back_quietly(back, stuck):
            yield event  # within max_failures: these hosts alone go back; the fleet goes on
        self.left.extend(c for c in stuck if c not in self.left)
        # A host that failed before touching anything has nothing to put back.
        self.went_back.extend(c for c in failing if c not in self.went_back and c not in stuck)

    def _finished(self, outcome: SwapOutcome, detail: str) -> SwapFinished:
        old = self.touched[0].old if self.touched else None
        self.history.append("swap_finished", app=self.app.name, outcome=outcome, detail=detail,
                            to=self.options.to_version, rolled_back=self.went_back,
                            seconds=time.perf_counter() - self.start, **{"from": old},
                            **({"left": self.left} if self.left else {}))  # fmt: skip
        return SwapFinished(self.app.name, outcome, old, self.options.to_version, detail,
                            self.timings, tuple(self.went_back))  # fmt: skip

    def _host_failed(self, cluster: RayCluster, exc: BaseException, allowed: int) -> SwapStep:
        """Recorded per host: what went wrong and how far its swap had got."""
        at = next((r.last for r in self.touched if r.cluster.id == cluster.id), "not started")
        reason = reason_of(exc)
        self.erred.add(cluster.id)
        self.history.append("step", app=self.app.name, cluster=cluster.id, phase="host_failed",
                            detail=reason, reached=at)  # fmt: skip
        return SwapStep(self.app.name, cluster.id, "host_failed",
                        f"{reason} (after {at}); counted as a failure, max_failures {allowed}",
                        {"reached": at})  # fmt: skip

    async def _batch(self, batch: list[RayCluster]) -> AsyncGenerator[Event | _Done, None]:
        """Swap a batch's clusters at once; their events interleave, then one _Done each.
        Closing it early cancels the clusters still running (their records stay in `touched`)."""
        queue: asyncio.Queue[Event | _Done] = asyncio.Queue()

        async def one(cluster: RayCluster) -> None:
            error: BaseException | None = None
            try:
                async for event in self.swap_cluster(cluster):
                    await queue.put(event)
            except Exception as exc:  # noqa: BLE001 - reported to events(), which rolls back
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

    # -- one cluster ---------------------------------------------------------------------

    def _step(self, record: ClusterSwap, phase: str, detail: str, **data: Any) -> SwapStep:
        record.last = f"{phase}: {detail}"
        self.history.append("step", app=self.app.name, cluster=record.cluster.id, phase=phase,
                            detail=detail, **data)  # fmt: skip
        return SwapStep(self.app.name, record.cluster.id, phase, detail, data)

    def _checked(self, record: ClusterSwap, phase: str, results: list[GateResult]) -> GatesChecked:
        passed = all(r.passed for r in results)
        self.history.append("gates", app=self.app.name, cluster=record.cluster.id, phase=phase,
                            passed=passed, results=[r.to_dict() for r in results])  # fmt: skip
        return GatesChecked(self.app.name, record.cluster.id, phase, tuple(results), passed)

    async def swap_cluster(self, cluster: RayCluster) -> AsyncIterator[Event]:
        """One cluster through the phases: deploy, ready, holdout gates, shadow, each canary
        step and its bake, 100%; GateFailed (or any error) leaves it where it stopped, in
        `touched`, for the rollback."""
        app, options = self.app, self.options
        head_state = await observe_host(self.connections, cluster.head)
        serve = AppServe(self.connections, cluster, head_state.layout, app)
        state = await serve.read()
        if state.live is None:
            raise UsageError(
                f"{app.name} is not deployed on {cluster.id}: run `mlops-tui apply` first"
            )
        if state.live == options.to_version:
            if cluster.target.topology == "edge":  # e.g. a swap run again after a partial one
                detail = f"already serves {options.to_version}"
                if len(state.versions) > 1:  # an earlier swap cut off before it retired them
                    gone = await retire_others(serve, state)
                    detail += f"; retired {', '.join(gone)}, left idle by an earlier swap"
                self.history.append("step", app=app.name, cluster=cluster.id, phase="skip",
                                    detail=detail)  # fmt: skip
                yield SwapStep(app.name, cluster.id, "skip", detail)
                return
            raise UsageError(
                f"{app.name} already serves version {options.to_version} on {cluster.id}"
            )
        trial = state.canary or state.shadow
        if trial is not None and trial[0] == options.to_version:
            # An earlier swap to this version was cut off mid-way (its host lost, its process
            # killed): the live version gets everything back, and this swap starts over. Its
            # replicas stay (idle): the swap checks them again before they get any traffic.
            detail = (f"{state.live} back to 100% ({options.to_version} was left in a "
                      f"{'canary' if state.canary else 'shadow'} by an earlier swap); starting over")  # fmt: skip
            seconds = await move_route(self.connections, serve, state, state.live, retire=False)
            self.history.append("step", app=app.name, cluster=cluster.id, phase="recover",
                                detail=detail, seconds=seconds)  # fmt: skip
            yield SwapStep(app.name, cluster.id, "recover", detail, {"seconds": seconds})
            state = await serve.read()
        if state.canary or state.shadow:
            raise UsageError(
                f"{app.name} on {cluster.id} is in a canary or shadow phase: `promote` or `abort` it first"
            )
        if state.live is None:  # read again after putting a cut-off swap back
            raise MlopsError(f"{app.name} has no live version on {cluster.id}")
        record = ClusterSwap(cluster, serve, state.live)
        self.touched.append(record)
        async for event in self._advance(record, state):
            yield event

    def _inputs_narrowed(self, old: str) -> list[str]:
        """What the new version refuses that `old` took, when `old` is in the store."""
        try:
            before = self.store.get(self.app.model, old).meta.schema
        except MlopsError:
            return []  # not in this store (imported elsewhere): nothing to compare with
        return narrowed(before, self.new.meta.schema)

    async def _advance(self, record: ClusterSwap, state: Deployed) -> AsyncIterator[Event]:
        app, options, new = self.app, self.options, self.new
        cluster, serve, old = record.cluster, record.serve, record.old
        # 1. The new version beside the live one, on its preview route only.
        try:
            await start_beside(self.connections, serve, state, new)
        except ServeApiError as exc:
            raise MlopsError(f"version {options.to_version} did not start on {cluster.id} ({exc}); "
                             "it never received traffic") from None  # fmt: skip
        record.move(Phase.DEPLOYED)
        yield self._step(record, "deploy", f"version {options.to_version} running beside {old} (no traffic)",
                         previous=old)  # fmt: skip
        changed = self._inputs_narrowed(old)
        if changed:  # said, not refused: a planned change of the request format is legitimate
            yield self._step(record, "inputs", f"warning: version {options.to_version} takes other inputs "
                             f"than {old}: {'; '.join(changed)}: clients that send them get a 400 after the switch")  # fmt: skip

        # 2. It answers real predictions; 3. the gates it can be judged on before any traffic.
        labelled = holdout(new)
        preview = preview_route(app.route, options.to_version)
        answer = await predict_until(self.connections, cluster, app.name, preview,
                                     probe_rows(new, labelled), options.to_version,
                                     max_rows=app.max_rows)  # fmt: skip
        new_holdout = scores(new, labelled, answer) if labelled else {}
        old_holdout: dict[str, float] = {}
        if labelled:
            try:  # the old version on the new one's holdout: the baseline for relative gates
                old_answer = await predict_until(self.connections, cluster, app.name, app.route,
                                                 labelled["X"], old, max_rows=app.max_rows)  # fmt: skip
                old_holdout = scores(new, labelled, old_answer)
            except Refused as exc:  # e.g. other features: relative gates say there is no baseline
                yield self._step(record, "holdout", f"{old} cannot score the holdout ({exc})")
        record.move(Phase.READY)
        yield self._step(record, "ready", f"version {options.to_version} answers predictions on {preview}",
                         holdout=new_holdout)  # fmt: skip
        offline = [g for g in options.gates if g.metric in new_holdout]
        unjudged = [g for g in options.gates if g.holdout_only and g.metric not in new_holdout]
        if offline or unjudged:
            results = evaluate(offline, new_holdout, old_holdout)
            results += [GateResult(g.text, None, None, False, f"version {options.to_version} has no "
                                   "holdout to judge it on; name gates (--gate) or skip them (--no-gates)")
                        for g in unjudged]  # fmt: skip
            verdict = self._checked(record, "holdout", results)
            yield verdict
            if not verdict.passed:
                raise GateFailed("holdout", results)

        # The old version alone, as the baseline for relative gates on live traffic.
        baseline = dict(old_holdout)
        live_relative = [g for g in options.gates if g.relative and g.metric in LATENCY | TRAFFIC]
        if live_relative and options.bake_s > 0:
            seconds = min(options.bake_s, BASELINE_MAX_S)
            async for item in bake(self.connections, app, cluster, options, seconds, "baseline"):
                if isinstance(item, BakeProgress):
                    yield item
                else:
                    frame = item
            baseline.update(
                {k: v for k, v in version_figures(frame, old).items() if k not in ACCURACY}
            )
            yield self._step(record, "baseline", f"{old} measured alone for {seconds:g}s",
                             figures=baseline)  # fmt: skip

        def so_far(frame: TelemetryFrame) -> list[GateResult]:
            return judge(options.gates, frame, options.to_version, old, baseline, partial=True)

        if options.shadow_s > 0:
            both = list(state.versions.values())
            await serve.write(serve.spec(old, both, shadow=(options.to_version, 1.0)))
            state.shadow = (options.to_version, 1.0)
            record.move(Phase.SHADOW)
            yield self._step(record, "shadow", f"live traffic mirrored to {options.to_version} "
                             f"for {options.shadow_s:g}s")  # fmt: skip
            async for item in bake(self.connections, app, cluster, options, options.shadow_s,
                                   "shadow", so_far):  # fmt: skip
                if isinstance(item, BakeProgress):
                    yield item
                else:
                    frame = item
            await serve.write(serve.spec(old, both))
            state.shadow = None
            record.move(Phase.READY)
            results = so_far(frame)
            verdict = self._checked(record, "shadow", results)
            yield verdict
            if not verdict.passed:
                raise GateFailed("shadow", results)

        # 4. Shift traffic, baking after each step.
        shares = (
            (100,)
            if options.strategy == Strategy.BLUEGREEN
            else tuple(sorted({*options.steps, 100}))
        )
        live_gates = any(not g.holdout_only for g in options.gates)
        for share in shares:
            if share >= 100:
                seconds = await move_route(self.connections, serve, state, options.to_version,
                                           retire=False)  # fmt: skip
                record.move(Phase.SHIFTED)
                self.timings["to_100_s"] = max(self.timings.get("to_100_s", 0.0), seconds)
            else:
                t0 = time.perf_counter()
                versions = list(state.versions.values())
                await serve.write(
                    serve.spec(old, versions, canary=(options.to_version, share / 100))
                )
                state.canary = (options.to_version, share / 100)
                record.move(Phase.CANARY)
                seconds = time.perf_counter() - t0
            yield self._step(record, "shift", f"{share}% of traffic on {options.to_version}",
                             share=share, seconds=seconds)  # fmt: skip
            if options.bake_s > 0 and not live_gates:
                # No gate to judge on live traffic: the bake is a time to watch, and it is kept
                # (lost telemetry does not stop it: there is nothing to judge).
                async for item in bake(self.connections, app, cluster, options, options.bake_s,
                                       f"bake@{share}%", need_telemetry=False):  # fmt: skip
                    if isinstance(item, BakeProgress):
                        yield item
            elif options.bake_s > 0:
                async for item in bake(self.connections, app, cluster, options, options.bake_s,
                                       f"bake@{share}%", so_far):  # fmt: skip
                    if isinstance(item, BakeProgress):
                        yield item
                    else:
                        frame = item
                results = judge(
                    options.gates, frame, options.to_version, old, baseline, partial=False
                )
                verdict = self._checked(record, f"bake@{share}%", results)
                yield verdict
                if not verdict.passed:
                    raise GateFailed(f"bake@{share}%", results)
        yield self._step(record, "promote", f"{options.to_version} serves 100% ({old} kept, idle, "
                         "for an instant rollback)")  # fmt: skip

    # -- the end: retire, or go back -------------------------------------------------------

    async def _retire(self) -> AsyncIterator[Event]:
        """Every cluster passed: the old replicas wait `retire_after_s`, idle, then go."""
        app, options, history = self.app, self.options, self.history
        promoted = [r for r in self.touched if r.phase == Phase.SHIFTED]
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
            record.move(Phase.RETIRED)
            history.append(
                "step", app=app.name, cluster=record.cluster.id, phase="retire", retired=gone
            )
            yield SwapStep(
                app.name, record.cluster.id, "retire", f"retired {', '.join(gone) or 'nothing'}"
            )

    async def _roll_back(self, record: ClusterSwap) -> AsyncIterator[Event]:
        """This cluster back on its old version (restarted first if it was retired)."""
        if record.cluster.id in self.went_back:
            return
        if record.cluster.id in self.erred:
            seconds = await self._restore_failed_host(record)
        else:
            seconds = await restore(self.connections, record.serve, record.old, self.store)
        self.timings["rollback_s"] = max(self.timings.get("rollback_s", 0.0), seconds)
        record.move(Phase.ROLLED_BACK)
        self.went_back.append(record.cluster.id)
        if record.cluster.id in self.left:  # lost earlier in this swap, reached again now
            self.left.remove(record.cluster.id)
        self.history.append("step", app=self.app.name, cluster=record.cluster.id, phase="rollback",
                            detail=f"back to {record.old}", seconds=seconds)  # fmt: skip
        yield SwapStep(self.app.name, record.cluster.id, "rollback",
                       f"{record.old} serves 100% again", {"seconds": seconds})  # fmt: skip

    async def _restore_failed_host(self, record: ClusterSwap) -> float:
        """A host that failed on its own may be frozen or cut off: it has to answer at once,
        and its restore is bounded, so one lost host never holds the fleet's swap."""
        host = record.cluster.head
        self.connections.forget(host.name)  # lost earlier in this run: it may be back now
        transport = await self.connections.get(host.name)
        answer = await transport.run(["true"], timeout=REACH_S)
        if not answer.ok:
            raise MlopsError(f"{host.name} answered `true` with {answer.tail()}")
        try:
            async with asyncio.timeout(LOST_RESTORE_S):
                return await restore(self.connections, record.serve, record.old, self.store)
        except TimeoutError:
            raise MlopsError(
                f"{host.name} did not finish restoring {record.old} within {LOST_RESTORE_S:g}s"
            ) from None

    async def _roll_back_quietly(
        self, records: list[ClusterSwap], stuck: list[str]
    ) -> AsyncIterator[Event]:
        """These clusters back, newest first; one that cannot be is named in `stuck` and left
        where it stopped."""
        app = self.app
        for record in reversed(records):
            try:
                async for event in self._roll_back(record):
                    yield event
            except _ERRORS as exc:
                stuck.append(record.cluster.id)
                record.move(Phase.LEFT)
                self.history.append("step", app=app.name, cluster=record.cluster.id, phase="rollback_failed",
                                    detail=f"{exc}; run `mlops-tui rollback {app.name} --to {record.old}`")  # fmt: skip
                yield SwapStep(app.name, record.cluster.id, "rollback_failed",
                               f"could not restore {record.old}: {exc}; run `mlops-tui rollback {app.name} --to {record.old}`")  # fmt: skip

    async def _interrupted(self) -> None:
        """Cancelled: unless every cluster had passed, each goes back; the history says what held."""
        app = self.app

        def note(cluster: str, detail: str) -> None:
            self.history.append("swap_finished", app=app.name, cluster=cluster,
                                outcome=SwapOutcome.INTERRUPTED, detail=detail)  # fmt: skip

        if not self.touched:
            note(app.target, "interrupted before anything changed")
        for record in reversed(self.touched):
            cluster = record.cluster.id
            if record.phase == Phase.ROLLED_BACK:
                note(cluster, f"interrupted; already back on {record.old}")
            elif self.complete:
                note(cluster, "interrupted after every host passed; the new version stays live")
            else:
                try:
                    await restore(self.connections, record.serve, record.old, self.store)
                    note(cluster, f"interrupted; {record.old} restored to 100%")
                except _ERRORS as exc:
                    note(cluster, f"interrupted and the restore failed: {reason_of(exc)}; "
                         f"run `mlops-tui rollback {app.name} --to {record.old}`")  # fmt: skip


def _host_failure(exc: BaseException | None) -> bool:
    """An edge host's own trouble (unreachable, telemetry lost, a version that would not start),
    counted against max_failures; a refusal (UsageError) or a bug stops the whole swap."""
    return isinstance(exc, _ERRORS) and not isinstance(exc, UsageError)
