"""`mlops-tui demo`: the whole loop on this machine's local target, no SSH needed.

Example models, `apply` of the target, then live traffic with delayed labels; on a terminal the
console opens on the app's live screen (swap v1 -> v2, then try the bad v3), elsewhere (or with
--headless) the same story plays scripted and a summary says how it went. Another app of the
target serving the churn example (numbers, categories, missing values) takes record-shaped
traffic with labels all along; in the console, its bad v2 is there to be refused. Either way the
traffic stops and the target is destroyed at the end, whatever happened.

With --drift, the churn traffic comes from after a price rise its v1 never saw (headless:
from the start; in the console: after DRIFT_AFTER_S), so its live accuracy falls below its
holdout figure; the headless story then runs `models update --method incremental --swap` on
it, and the console's App screen proposes the same update (key u).

Exit 0 only when the story played out: v2 promoted, v3 refused by its gates and rolled back,
(with --drift: the churn update promoted) and not one request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from cluster.errors import MlopsError, UsageError
from cluster.gates import QUALITY, parse_gate
from cluster.inventory import App, Inventory
from cluster.keys import cluster_app_key
from cluster.models.store import ModelStore
from cluster.provision.events import RunFinished
from cluster.provision.operations import apply_plans, destroy, has_changes, planned
from cluster.provision.topology import clusters_of
from cluster.rollout.events import GatesChecked, Strategy, SwapFinished, SwapOptions, SwapOutcome
from cluster.rollout.history import History, history_path
from cluster.rollout.http_checks import holdout
from cluster.rollout.swap import swap
from cluster.tls.client import client_tls
from cluster.traffic import LabelledTraffic, TrafficStats
from cluster.transport import Connections
from console import exit_codes
from console.commands.swap import print_event
from console.durations import duration
from console.inventory_path import open_inventory
from console.render.provision import print_plan, print_step

if TYPE_CHECKING:  # numpy and scikit-learn load only when the update runs
    from cluster.updates.update import UpdateFinished, UpdateJudged

EXAMPLE = "inventory.example.yaml"
DEMO_MODEL = "breast-cancer"
CHURN_MODEL = "churn"
DEFAULT_GATES = ("accuracy>=blue-0.02",)
DRIFT_AFTER_S = 20.0  # in the console: long enough to see the accuracy before it falls


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="the loop on this machine's local target: models, apply, live labelled traffic, "
        "then the console (or a scripted story with --headless)",
    )
    p.add_argument("-i", "--inventory", help=f"inventory (default: ./{EXAMPLE} when present)")
    p.add_argument("-t", "--target", default="local", help="the target to demo on (default local)")
    p.add_argument(
        "--headless",
        action="store_true",
        help="play the story scripted and print a summary (the default without a terminal)",
    )
    p.add_argument(
        "--duration", type=duration, default=60.0, help="traffic for at least this long (60s)"
    )
    p.add_argument("--rate", type=float, default=20.0, help="predictions a second (default 20)")
    p.add_argument(
        "--drift",
        action="store_true",
        help="the churn traffic drifts (a price rise its v1 never saw): its accuracy falls, "
        "and an incremental update is proposed and swapped in",
    )
    p.set_defaults(run=run)


async def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    given = args.inventory or (None if os.environ.get("MLOPS_INVENTORY") else _example())
    inventory = open_inventory(given, [args.target], err=err)
    app = _demo_app(inventory, args.target)
    headless = args.headless or not (sys.stdin.isatty() and sys.stdout.isatty())
    store = ModelStore(inventory.settings.model_store)
    churn = [
        a for a in inventory.apps.values() if a.target == args.target and a.model == CHURN_MODEL
    ]
    await _examples(store, app, churn, err)
    if not await _apply(inventory, store, args.target, out):
        await _destroy(inventory, args.target, out)
        return exit_codes.FAILED
    if args.drift and not any(a.log_features for a in churn):
        raise UsageError(
            f"--drift updates the churn app from its logged inputs: give one of the apps "
            f"serving {CHURN_MODEL} in {inventory.path} `log_features: true`"
        )
    stats = TrafficStats()
    side = {a.name: TrafficStats() for a in churn}  # record-shaped traffic beside the story
    outcomes: list[SwapFinished] = []
    reasons: dict[str, str] = {}  # version -> why its gates failed
    updated: list[UpdateOutcome] = []
    try:
        async with contextlib.AsyncExitStack() as traffic:
            await traffic.enter_async_context(_traffic(inventory, app, store, args.rate, stats))
            drift = (0.0 if headless else DRIFT_AFTER_S) if args.drift else None
            for other in churn:
                rate = args.rate if drift is not None else args.rate / 4
                await traffic.enter_async_context(
                    _traffic(inventory, other, store, rate, side[other.name], drift)
                )
            if headless:
                outcomes = await _story(
                    inventory, app, store, args.duration, args.rate, out, reasons
                )
                if args.drift:
                    target = next(a for a in churn if a.log_features)
                    updated.append(await _update_story(inventory, target, store, out))
            else:
                from console.tui.app import MlopsApp  # Textual only for the interactive demo

                await MlopsApp(inventory, start=("app", app.name)).run_async()
    finally:
        out.print(Text("\n== the end: traffic stopped; destroying the demo deployment", "bold"))
        await _destroy(inventory, args.target, out)
    _summary(out, stats, outcomes, reasons, headless)
    for name, figures in side.items():
        _side_summary(out, name, figures)
    for outcome in updated:
        out.print(outcome.line())
    if not headless:
        return exit_codes.OK
    played = [o.outcome for o in outcomes] == [SwapOutcome.PROMOTED, SwapOutcome.ROLLED_BACK]
    played = played and all(u.promoted for u in updated)
    clean = all(s.failed == 0 and s.answered for s in (stats, *side.values()))
    return exit_codes.OK if played and clean else exit_codes.FAILED


def _example() -> str | None:
    return EXAMPLE if Path(EXAMPLE).exists() else None


def _demo_app(inventory: Inventory, target: str) -> App:
    apps = [a for a in inventory.apps.values() if a.target == target]
    if not apps:
        raise UsageError(f"target '{target}' in {inventory.path} has no app to demo")
    app = apps[0]
    if app.model != DEMO_MODEL or app.model_version != "1":
        raise UsageError(
            f"the demo swaps {DEMO_MODEL} v1 -> v2 -> v3: apps.{app.name}.model must be "
            f"{DEMO_MODEL}:1 (it is {app.model}:{app.model_version or 'latest'})"
        )
    return app


async def _examples(store: ModelStore, app: App, churn: list[App], err: Console) -> None:
    """v1 (good), v2 (better), v3 (bad), and churn's v1 (good) and v2 (bad) when an app
    serves it, trained once into the inventory's store."""
    if not {"1", "2", "3"} <= set(store.versions(app.model)):
        from cluster.models.examples import make_examples  # scikit-learn: only when training

        with err.status("training the example models v1 (good), v2 (better), v3 (bad)"):
            await asyncio.to_thread(make_examples, store, app.model)
    if churn and not {"1", "2"} <= set(store.versions(CHURN_MODEL)):
        from cluster.models.churn import make_churn_examples

        with err.status("training the churn examples v1 (good), v2 (bad)"):
            await asyncio.to_thread(make_churn_examples, store, CHURN_MODEL)


async def _apply(inventory: Inventory, store: ModelStore, target: str, out: Console) -> bool:
    out.print(
        Text(f"== apply {target}: Ray, Serve and {DEMO_MODEL} v1 (no SSH: this machine)", "bold")
    )
    async with planned(inventory, store, [target]) as run_:
        print_plan(out, run_.event)
        if not has_changes(run_.plans):
            return True
        finished: RunFinished | None = None
        async for step in apply_plans(run_.connections, run_.plans, run_.bundle):
            print_step(out, step)
            finished = step if isinstance(step, RunFinished) else finished
    return finished is not None and not finished.failed_hosts


async def _destroy(inventory: Inventory, target: str, out: Console) -> None:
    try:
        async with Connections(inventory) as connections:
            async for event in destroy(connections, [target]):
                print_step(out, event)
    except MlopsError as exc:
        out.print(Text(f"destroy failed: {exc}; run `mlops-tui destroy -t {target}`", "bold red"))


@contextlib.asynccontextmanager
async def _traffic(
    inventory: Inventory,
    app: App,
    store: ModelStore,
    rate: float,
    stats: TrafficStats,
    drift_after_s: float | None = None,
) -> AsyncIterator[None]:
    """Held-out rows to the app, their labels a second later, until the block ends; with
    `drift_after_s`, churn customers after the price rise from then on."""
    version = store.get(app.model, app.model_version or None)  # its sha256 checked once
    labelled = holdout(version)
    if labelled is None:
        raise UsageError(f"{app.model}:1 has no holdout to send")
    drifted = None
    if drift_after_s is not None:
        from cluster.models.churn import drifted_sample

        schema = version.meta.schema
        sample = await asyncio.to_thread(drifted_sample)
        assert sample.y is not None
        drifted = (sample.records(schema, len(sample)), sample.y.tolist())
    cluster = clusters_of(inventory, inventory.targets[app.target])[0]
    head = cluster.head
    async with Connections(inventory) as connections:
        transport = await connections.get(head.name)
        key = await cluster_app_key(connections, cluster, app.name)  # labels need it
        tls = client_tls(inventory, cluster.target)
        async with transport.forward(head.address, head.ray.serve_http) as (host, port):
            url = f"{'https' if tls else 'http'}://{host}:{port}{app.route}"
            generator = LabelledTraffic(
                url, labelled["X"], labelled["y"], rate=rate, stats=stats, key=key,
                drifted=drifted, drift_after_s=drift_after_s or 0.0,
                client_options=tls.options(head.address) if tls else {},
            )  # fmt: skip
            stop = asyncio.Event()
            task = asyncio.create_task(generator.run(stop))
            try:
                yield
            finally:
                stop.set()
                await task


async def _story(
    inventory: Inventory,
    app: App,
    store: ModelStore,
    seconds: float,
    rate: float,
    out: Console,
    reasons: dict[str, str],
) -> list[SwapFinished]:
    """v1 -> v2 as a canary behind the gates (promoted), then v2 -> v3 (refused, rolled back)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    gates = app.gates or tuple(parse_gate(g) for g in DEFAULT_GATES)
    # Long enough for the canary's half of the traffic to bring the labels its gates need.
    need = max((g.min_labels for g in gates if g.metric in QUALITY), default=0)
    bake = max(5.0, seconds / 4, need / (rate * 0.5) + 2.0)
    out.print(
        Text(f"\n== traffic: held-out rows to {app.route}/predict, labels a second later", "bold")
    )
    await asyncio.sleep(min(8.0, seconds / 6))  # v1 gathers live labels: the gates' baseline
    options = SwapOptions(to_version="2", strategy=Strategy.CANARY, steps=(50,), bake_s=bake,
                          gates=gates, retire_after_s=0.0)  # fmt: skip
    outcomes: list[SwapFinished] = []
    for version, expect in (("2", "promoted"), ("3", "refused by its gates, rolled back")):
        out.print(Text(f"\n== swap {app.name} to v{version} (expected: {expect})", "bold"))
        history = History(history_path(inventory.path))
        async with Connections(inventory) as connections:
            swapping = swap(
                connections, store, app, dataclasses.replace(options, to_version=version), history
            )
            async for event in swapping:
                print_event(out, event)
                if isinstance(event, SwapFinished):
                    outcomes.append(event)
                elif isinstance(event, GatesChecked) and not event.passed:
                    why = "; ".join(f"{r.gate}: {r.reason}" for r in event.results if not r.passed)
                    reasons[version] = f"{event.phase} gates failed: {why}"
    left = seconds - (loop.time() - start)
    if left > 0:
        out.print(Text(f"\n== traffic goes on for {left:.0f} s more", "bold"))
        await asyncio.sleep(left)
    return outcomes


@dataclasses.dataclass
class UpdateOutcome:
    """How the churn update went: the verdict's figures, and the swap's outcome."""

    app: str
    judged: UpdateJudged | None = None
    finished: UpdateFinished | None = None
    swapped: SwapFinished | None = None

    @property
    def promoted(self) -> bool:
        return self.swapped is not None and self.swapped.outcome == SwapOutcome.PROMOTED

    def line(self) -> Text:
        j, f = self.judged, self.finished
        if j is None or f is None:
            return Text(f"{self.app} update: did not finish", "bold red")
        v = j.verdict
        figures = (f"{v.metric} on the newest {j.held_out} records: live v{j.parent} "
                   f"{v.live_new:.4f}, candidate {v.candidate_new:.4f}")  # fmt: skip
        if f.version is None:
            return Text(f"{self.app} update ({j.method}): {f.outcome}; {figures}", "yellow")
        outcome = self.swapped.outcome if self.swapped else "not swapped"
        style = "green" if self.promoted else "yellow"
        return Text(
            f"{self.app} update ({j.method}): v{j.parent} -> v{f.version}: {outcome}; {figures}",
            style,
        )


async def _update_story(
    inventory: Inventory, app: App, store: ModelStore, out: Console
) -> UpdateOutcome:
    """The churn app's accuracy fell with the drift: an incremental update from its labelled
    records, judged, stored, then swapped in behind its gates."""
    from cluster.updates.train import Method
    from cluster.updates.update import UpdateFinished, UpdateJudged, UpdateOptions, update_model
    from console.render.update import print_update_event

    outcome = UpdateOutcome(app.name)
    out.print(Text(f"\n== {app.name}: the price rise lowered its accuracy; update it "
                   "(incremental, from the labels fed back), then swap", "bold"))  # fmt: skip
    # --margin 0.02: the holdout's own tolerance in the default gate (accuracy>=blue-0.02).
    options = UpdateOptions(Method.INCREMENTAL, since_s=3600.0, margin=0.02)
    async with Connections(inventory) as connections:
        try:
            async for event in update_model(connections, store, app, options):
                print_update_event(out, event)
                if isinstance(event, UpdateJudged):
                    outcome.judged = event
                elif isinstance(event, UpdateFinished):
                    outcome.finished = event
        except MlopsError as exc:
            out.print(Text(f"update failed: {exc}", "bold red"))
            return outcome
        if outcome.finished is None or outcome.finished.version is None:
            return outcome
        history = History(history_path(inventory.path))
        # No bake: its holdout gate judges it before any traffic moves (the demo's time is
        # short; `models update --swap` bakes as long as any swap).
        to = SwapOptions(
            to_version=outcome.finished.version, gates=app.gates, bake_s=0.0, retire_after_s=0.0
        )
        async for event in swap(connections, store, app, to, history):
            print_event(out, event)
            if isinstance(event, SwapFinished):
                outcome.swapped = event
    return outcome


def _side_summary(out: Console, name: str, stats: TrafficStats) -> None:
    versions = ", ".join(f"v{v}: {n}" for v, n in sorted(stats.versions.items())) or "none"
    style = "green" if stats.failed == 0 else "bold red"
    out.print(Text(f"{name} (records with categories and missing values): {stats.sent} sent, "
                   f"{stats.answered} answered ({versions}), {stats.failed} failed; "
                   f"{stats.labels_sent} labels fed back", style))  # fmt: skip
    for reason in stats.failures:
        out.print(Text(f"  failed: {reason}", "red"))


def _summary(
    out: Console,
    stats: TrafficStats,
    outcomes: list[SwapFinished],
    reasons: dict[str, str],
    headless: bool,
) -> None:
    out.print(Text("\n== summary", "bold"))
    versions = ", ".join(f"v{v}: {n}" for v, n in sorted(stats.versions.items())) or "none"
    style = "green" if stats.failed == 0 else "bold red"
    out.print(Text(f"requests: {stats.sent} sent, {stats.answered} answered ({versions}), ", style)
              + Text(f"{stats.failed} failed; {stats.labels_sent} labels fed back", style))  # fmt: skip
    for reason in stats.failures:
        out.print(Text(f"  failed: {reason}", "red"))
    for finished in outcomes:
        style = "green" if finished.outcome == SwapOutcome.PROMOTED else "yellow"
        out.print(
            Text(
                f"v{finished.from_version} -> v{finished.to_version}: {finished.outcome}: {finished.detail}",
                style,
            )
        )
        if finished.to_version in reasons:
            out.print(Text(f"  why: {reasons[finished.to_version]}", style))
    if headless and not outcomes:
        out.print(Text("the story did not play: no swap finished", "bold red"))
