"""Rollout: start a swap from a form, confirm exactly what will change, then watch every step
and every gate value as it is evaluated; promote, abort or roll back (each confirmed).

The swap itself belongs to the app (`MlopsApp.swaps`), not to this screen: leaving the screen
keeps it running, and coming back shows it from its first step.
"""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.widgets import Input, Select, Static

from cluster.events import Event
from cluster.models.store import ModelStore, VersionListing
from cluster.provision.topology import clusters_of
from cluster.rollout.events import (
    BakeProgress,
    GatesChecked,
    Strategy,
    SwapFinished,
    SwapOptions,
    SwapOutcome,
    SwapStep,
)
from console.tui.screens.confirm import ConfirmScreen
from console.tui.screens.traffic import TrafficScreen
from console.tui.swaps import SwapRun
from console.tui.widgets.rollout.gate_table import GateTable
from console.tui.widgets.rollout.swap_form import FormError, SwapForm
from console.tui.widgets.rollout.swap_steps import SwapSteps


def describe_swap(app_name: str, where: str, live: str | None, options: SwapOptions) -> list[str]:
    """The confirmation's lines: exactly what the swap will do, in order."""
    to = f"v{options.to_version}"
    old = f"v{live}" if live else "the live version"
    lines = [f"{app_name} on {where}: {to} starts beside {old} (its own replicas, no traffic)"]
    if options.shadow_s:
        lines.append(f"shadow: live traffic is mirrored to {to} for {options.shadow_s:g}s first")
    if options.strategy == Strategy.CANARY:
        shares = sorted({*options.steps, 100})
        lines.append(
            f"canary: {' → '.join(f'{s}%' for s in shares)} of the traffic on {to}"
            + (f", {options.bake_s:g}s bake after each step" if options.bake_s else "")
        )
    else:
        lines.append(
            f"blue/green: the route moves to {to} at once"
            + (f", then a {options.bake_s:g}s bake" if options.bake_s else "")
        )
    if options.gates:
        lines.append(
            f"gates: {', '.join(g.text for g in options.gates)} (holdout first, then live)"
        )
    elif options.no_gates:
        lines.append(f"no gates: {to} is promoted once it answers predictions")
    else:
        lines.append(
            "no gates named: the default holdout gate judges it "
            "(accuracy>=blue-0.02, or mse<=blue*1.1 for a regressor)"
        )
    lines.append(
        f"a failed gate: {old} gets 100% back and {to} is removed"
        if options.auto_rollback
        else "a failed gate: left as it is, for you to promote, abort or roll back"
    )
    lines.append(
        f"after promotion {old} stays idle {options.retire_after_s:g}s (instant rollback), then retires"
    )
    return lines


class RolloutScreen(TrafficScreen):
    """The form when no swap of this app is running; its progress when one is."""

    BINDINGS = [
        Binding("ctrl+s", "review", "Start swap"),
        Binding("x", "stop_swap", "Stop swap"),
        Binding("n", "new_swap", "New swap", show=False),
    ]

    def __init__(self, app_name: str) -> None:
        super().__init__(app_name)
        self.title = f"Rollout {app_name}"
        self.versions: list[VersionListing] = []

    def compose_body(self) -> ComposeResult:
        yield Static("", id="rollout-heading", markup=False)
        yield Vertical(id="form-slot")
        with Vertical(id="progress-view"):
            yield Static("", id="swap-phase", markup=False)
            yield GateTable(id="gate-table")
            yield SwapSteps(id="swap-steps")
        yield Static("", id="swap-outcome", markup=False)

    @property
    def run(self) -> SwapRun | None:
        return self.console.swaps.get(self.app_name)

    def live(self) -> str | None:
        row = self.console.fleet.row(self.app_name)
        return row.live if row is not None else None

    def on_mount(self) -> None:
        self._heading()
        if self.run is not None:
            self.show_run()
        else:
            self.show_form()

    def _heading(self) -> None:
        app = self.console.inventory.apps[self.app_name]
        live = self.live()
        text = Text(f"Swap {self.app_name}", "bold")
        text.append(f" on {app.target} · model {app.model} · live ")
        text.append(f"v{live}" if live else "unknown yet", "bold blue" if live else "dim")
        self.query_one("#rollout-heading", Static).update(text)

    # -- the form ---------------------------------------------------------------------

    def show_form(self) -> None:
        self.query_one("#progress-view").display = False
        self.query_one("#swap-outcome", Static).update(
            Text("ctrl+s: review and start   tab: next field   esc: back", "dim")
        )
        self.load_versions()

    @work(exclusive=True, group="versions", exit_on_error=False)
    async def load_versions(self) -> None:
        store = ModelStore(self.console.inventory.settings.model_store)
        self.versions = await asyncio.to_thread(store.listing)
        slot = self.query_one("#form-slot")
        await slot.remove_children()
        app = self.console.inventory.apps[self.app_name]
        if not any(v.name == app.model and not v.invalid for v in self.versions):
            await slot.mount(Static(Text(f"no versions of {app.model} in {store.root}", "red")))
            return
        await slot.mount(SwapForm(app, self.versions, self.live()))
        slot.display = True
        self.query_one("#to-version", Select).focus()

    def focus_body(self) -> None:
        try:
            self.query_one("#to-version", Select).focus()
        except NoMatches:  # no form on screen: the progress tables
            self.query_one(GateTable).focus()

    @on(Input.Submitted, "#swap-form Input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_review()

    def action_review(self) -> None:
        if self.refused():
            return
        if self.run is not None and self.run.running:
            self.notify("a swap of this app is running", severity="warning")
            return
        forms = self.query(SwapForm)
        if not forms:
            return
        try:
            options = forms.first().options()
        except FormError as exc:
            self.notify(str(exc), title="cannot start the swap", severity="error")
            self.query_one(f"#{exc.field}").focus()
            return
        inventory = self.console.inventory
        app = inventory.apps[self.app_name]
        target = inventory.targets[app.target]
        hosts = ", ".join(h.name for c in clusters_of(inventory, target) for h in c.hosts)
        lines = describe_swap(self.app_name, f"{target.name} ({hosts})", self.live(), options)

        def answered(yes: bool | None) -> None:
            if yes:
                self.console.start_swap(self.app_name, options)
                self.show_run()

        self.app.push_screen(
            ConfirmScreen(f"Swap {self.app_name} to v{options.to_version}?", lines, yes="swap"),
            answered,
        )

    def action_new_swap(self) -> None:
        if self.run is not None and self.run.running:
            self.notify("a swap of this app is running", severity="warning")
            return
        self.console.swaps.pop(self.app_name, None)
        self._heading()
        self.show_form()

    # -- a running (or finished) swap -------------------------------------------------

    def show_run(self) -> None:
        run = self.run
        assert run is not None
        self.query_one("#form-slot").display = False
        self.query_one("#progress-view").display = True
        self.query_one(GateTable).reset()
        self.query_one(SwapSteps).reset()
        self.query_one("#swap-phase", Static).update(
            Text(f"swapping to v{run.options.to_version} ({run.options.strategy})…", "bold")
        )
        self.query_one("#swap-outcome", Static).update(
            Text("x: stop (roll back)   p/a/b: promote/abort/rollback once it ends", "dim")
        )
        for event in run.events:
            self.swap_event(event)
        if run.finished is not None or run.error:
            self.swap_done(run)
        self.query_one(GateTable).focus()

    def swap_event(self, event: Event) -> None:
        """One event of this app's swap (called by the app as events arrive)."""
        phase = self.query_one("#swap-phase", Static)
        if isinstance(event, SwapStep):
            self.query_one(SwapSteps).add(event)
            phase.update(Text(f"{event.phase}: {event.detail}", "bold"))
        elif isinstance(event, BakeProgress):
            self.query_one(GateTable).show(event.cluster, event.phase, event.results, final=False)
            phase.update(
                Text(
                    f"{event.phase} on {event.cluster}: {event.elapsed_s:.0f}/{event.total_s:g} s",
                    "bold",
                )
            )
        elif isinstance(event, GatesChecked):
            self.query_one(GateTable).show(event.cluster, event.phase, event.results, final=True)
        elif isinstance(event, SwapFinished) and self.run is not None:
            self.swap_done(self.run)  # said now, not once the connections have closed

    def swap_done(self, run: SwapRun) -> None:
        outcome = self.query_one("#swap-outcome", Static)
        finished = run.finished
        if finished is None:
            outcome.update(Text(f"swap stopped: {run.error or 'interrupted'}", "bold red"))
            return
        style = "bold green" if finished.outcome == SwapOutcome.PROMOTED else "bold red"
        text = Text(f"{finished.outcome}: {finished.detail}", style)
        text.append("   n: new swap", "dim")
        outcome.update(text)
        self._heading()

    def action_stop_swap(self) -> None:
        run = self.run
        if run is None or not run.running:
            self.notify("no swap of this app is running")
            return
        old = self.live()

        def answered(yes: bool | None) -> None:
            if yes:
                self.console.stop_swap(self.app_name)

        self.app.push_screen(
            ConfirmScreen(
                f"Stop the swap of {self.app_name}?",
                [f"{'v' + old if old else 'the old version'} gets 100% of the traffic back and "
                 f"v{run.options.to_version} is removed (as Ctrl-C does in `mlops-tui swap`)."],
                yes="stop and roll back",
            ),
            answered,
        )  # fmt: skip

    def action_traffic(self, action: str) -> None:
        run = self.run
        if run is not None and run.running and not run.passed:
            if action == "promote":
                self.notify("the swap is still judging its gates: wait for it, or x to stop it",
                            severity="warning")  # fmt: skip
            else:
                self.action_stop_swap()
            return
        super().action_traffic(action)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "review" and not self.query(SwapForm):
            return None
        return super().check_action(action, parameters)
