"""Plan, apply, destroy: the plan per host, a confirmation, then every step as it runs.

The plan is made in a worker that keeps its connections open while the operator reads it;
`a` (confirmed) applies exactly that plan through the same connections, as `mlops-tui apply`
does after its question. `d` (confirmed) destroys the target instead.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import ProgressBar, Static
from textual.worker import Worker

from cluster.errors import MlopsError
from cluster.models.store import ModelStore
from cluster.provision.events import PlanReady, RunFinished, StepDone, StepFailed
from cluster.provision.operations import apply_plans, destroy, has_changes, planned
from cluster.transport import Connections
from console.tui.messages import OperationDone, OperationEvent
from console.tui.screens.base import ConsoleScreen
from console.tui.screens.confirm import ConfirmScreen
from console.tui.widgets.provision.plan_table import PlanTable
from console.tui.widgets.provision.step_table import StepTable


class PlanScreen(ConsoleScreen):
    """`target` empty: every target of the inventory."""

    BINDINGS = [
        Binding("a", "apply", "Apply"),
        Binding("d", "destroy", "Destroy"),
        Binding("r", "replan", "Re-plan"),
    ]
    MUTATING: ClassVar[frozenset[str]] = frozenset({"apply", "destroy"})

    def __init__(self, target: str = "") -> None:
        super().__init__()
        self.target = target
        self.label = f"plan {target or 'all targets'}"
        self.title = self.label.capitalize()
        self.plan: PlanReady | None = None
        self._decision: asyncio.Future[bool] | None = None
        self.worker: Worker[None] | None = None
        self.running = ""  # "apply" or "destroy" while one runs

    def targets_in_view(self) -> list[str]:
        return [self.target] if self.target else list(self.console.inventory.targets)

    def compose_body(self) -> ComposeResult:
        yield Static("", id="plan-heading", markup=False)
        yield PlanTable(id="plan")
        yield StepTable(id="steps")
        yield ProgressBar(total=None, show_eta=False, id="progress")
        yield Static("", id="summary", markup=False)

    def on_mount(self) -> None:
        self.query_one(StepTable).display = False
        self.query_one(ProgressBar).display = False
        self.action_replan()

    def action_replan(self) -> None:
        if self.running:
            self.notify(f"{self.running} is running", severity="warning")
            return
        self.plan = None
        self.query_one(StepTable).display = False
        self.query_one(PlanTable).display = True
        self.query_one("#plan-heading", Static).update(Text("observing hosts…", "dim"))
        self.query_one("#summary", Static).update("")
        self.worker = self.plan_then_apply()

    @work(exclusive=True, group="plan", exit_on_error=False)
    async def plan_then_apply(self) -> None:
        inventory = self.console.inventory
        store = ModelStore(inventory.settings.model_store)
        targets = [self.target] if self.target else None
        self._decision = asyncio.get_running_loop().create_future()
        try:
            async with planned(inventory, store, targets) as run:
                self.post_message(OperationEvent("plan", self.label, run.event))
                if not has_changes(run.plans) or not await self._decision:
                    return
                self.running = "apply"
                async for step in apply_plans(run.connections, run.plans, run.bundle):
                    self.post_message(OperationEvent("apply", self.label, step))
        except MlopsError as exc:
            self.post_message(OperationDone(self.running or "plan", self.label, str(exc)))
            return
        finally:
            self.running = ""
        self.post_message(OperationDone("apply", self.label))

    def action_apply(self) -> None:
        if self.refused():
            return
        plan = self.plan
        if plan is None or self._decision is None or self._decision.done():
            self.notify("no plan to apply yet (r plans again)", severity="warning")
            return
        if not plan.actions:
            self.notify("nothing to apply: the hosts run what the inventory says")
            return
        hosts = sorted({a.host for a in plan.actions})
        lines = [f"{len(plan.actions)} change(s) on {', '.join(hosts)}:"]
        lines += [f"  {a.host}: {a.kind} {a.detail}" for a in plan.actions[:12]]
        if len(plan.actions) > 12:
            lines.append(f"  … and {len(plan.actions) - 12} more (listed on the screen)")
        if plan.errors or plan.unreachable:
            lines.append("Blocked or unreachable hosts are left as they are.")

        def answered(yes: bool | None) -> None:
            if yes and self._decision is not None and not self._decision.done():
                self._start_steps(len(plan.actions))
                self._decision.set_result(True)

        self.app.push_screen(ConfirmScreen("Apply this plan?", lines, yes="apply"), answered)

    def action_destroy(self) -> None:
        if self.refused():
            return
        if self.running:
            self.notify(f"{self.running} is running", severity="warning")
            return
        inventory = self.console.inventory
        targets = self.targets_in_view()
        lines = [
            f"{t}: delete its Serve apps, stop the Ray processes mlops-tui started on "
            f"{', '.join(inventory.targets[t].hosts)}"
            for t in targets
        ]
        apps = [a for a in inventory.apps.values() if a.target in targets]
        if apps:
            lines.append(f"Apps that stop serving: {', '.join(a.name for a in apps)}")

        def answered(yes: bool | None) -> None:
            if yes:
                self.worker = self.run_destroy(targets)

        self.app.push_screen(
            ConfirmScreen(f"Destroy {', '.join(targets)}?", lines, yes="destroy"), answered
        )

    @work(exclusive=True, group="plan", exit_on_error=False)
    async def run_destroy(self, targets: list[str]) -> None:
        self.running = "destroy"
        self._start_steps(None)
        try:
            async with Connections(self.console.inventory) as connections:
                async for event in destroy(connections, targets):
                    self.post_message(OperationEvent("destroy", self.label, event))
        except MlopsError as exc:
            self.post_message(OperationDone("destroy", self.label, str(exc)))
            return
        finally:
            self.running = ""
        self.post_message(OperationDone("destroy", self.label))

    def _start_steps(self, total: int | None) -> None:
        self.query_one(PlanTable).display = False
        steps = self.query_one(StepTable)
        steps.reset()
        steps.display = True
        bar = self.query_one(ProgressBar)
        bar.update(total=total, progress=0)
        bar.display = True

    def on_operation_event(self, message: OperationEvent) -> None:
        event = message.event
        if isinstance(event, PlanReady):
            self.plan = event
            self.query_one(PlanTable).show(event)
            blocked = len(event.errors) + len(event.unreachable)
            heading = Text(f"{len(event.actions)} change(s) planned", "bold")
            if blocked:
                heading.append(f", {blocked} host(s) blocked or unreachable", "bold red")
            if not (event.actions or blocked):
                heading = Text("No changes: the hosts run what the inventory says.", "green")
            else:
                heading.append("   a: apply   d: destroy   r: plan again", "dim")
            self.query_one("#plan-heading", Static).update(heading)
            return
        if self.query_one(StepTable).add(event) and isinstance(event, StepDone | StepFailed):
            self.query_one(ProgressBar).advance(1)
        if isinstance(event, RunFinished):
            text = Text(f"{event.changed} step(s) done in {event.duration_s:.1f} s",
                        "green" if not event.failed_hosts else "bold red")  # fmt: skip
            if event.failed_hosts:
                text.append(f"; failed: {', '.join(event.failed_hosts)}", "bold red")
            if event.skipped_hosts:
                text.append(f"; untouched: {', '.join(event.skipped_hosts)}", "yellow")
            self.query_one("#summary", Static).update(text)

    def on_operation_done(self, message: OperationDone) -> None:
        if message.error:
            self.query_one("#summary", Static).update(
                Text(f"{message.kind} failed: {message.error}", "bold red")
            )

    async def action_back(self) -> None:
        if not self.running:
            await super().action_back()
            return

        def answered(yes: bool | None) -> None:
            if yes and self.worker is not None:
                self.worker.cancel()  # steps cut short are each all-or-nothing on their host

        self.app.push_screen(
            ConfirmScreen(
                f"Interrupt {self.running}?",
                [f"{self.running} is still running. Steps under way finish or not on their "
                 "host; the rest keep their old state. Run apply again to converge."],
                yes="interrupt",
            ),
            answered,
        )  # fmt: skip
