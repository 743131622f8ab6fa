"""Update an app from the labels production fed back: a candidate trained in a worker (as
`mlops-tui models update` trains it), shown beside the live version, and, when it is stored,
the swap to it offered behind the app's gates.

Nothing reaches the model store unless the candidate is better (the operation writes it in
one step at its end): leaving the screen or pressing x while it runs stores nothing.
"""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static
from textual.worker import Worker

from cluster.errors import MlopsError
from cluster.provision.topology import clusters_of
from cluster.rollout.events import SwapOptions
from cluster.updates.gather import GatherProgress
from cluster.updates.train import Method
from cluster.updates.update import UpdateFinished, UpdateJudged, UpdateOptions, UpdateStep
from console.render.update import side_by_side
from console.tui.messages import OperationDone, OperationEvent
from console.tui.screens.base import ConsoleScreen
from console.tui.screens.confirm import ConfirmScreen
from console.tui.screens.rollout import describe_swap

KEYS = "i: incremental (partial_fit)   b: batch (refit)   esc: back"


class UpdateScreen(ConsoleScreen):
    """One app's update: its steps, the side-by-side figures, the verdict, the swap offer."""

    BINDINGS = [
        Binding("i", "start('incremental')", "Incremental"),
        Binding("b", "start('batch')", "Batch"),
        Binding("s", "swap", "Swap to it"),
        Binding("x", "stop", "Stop", show=False),
    ]
    MUTATING: ClassVar[frozenset[str]] = frozenset({"start", "swap"})

    def __init__(self, app_name: str) -> None:
        super().__init__()
        self.app_name = app_name
        self.title = f"Update {app_name}"
        self.worker: Worker[None] | None = None
        self.lines: list[Text] = []
        self.finished: UpdateFinished | None = None

    def targets_in_view(self) -> list[str]:
        return [self.console.inventory.apps[self.app_name].target]

    def compose_body(self) -> ComposeResult:
        yield Static("", id="update-heading", markup=False)
        yield Static(Text(KEYS, "dim"), id="update-keys", markup=False)
        with VerticalScroll(id="update-view"):
            yield Static("", id="update-steps", markup=False)
            yield Static("", id="update-verdict", markup=False)

    def on_mount(self) -> None:
        app = self.console.inventory.apps[self.app_name]
        heading = Text(f"Update {self.app_name}", "bold")
        heading.append(f" · {app.model} · from the labelled records of the last 24h")
        heading.append("\nstored only if better on the newest records and within 0.01 on the "
                       "holdout", "dim")  # fmt: skip
        self.query_one("#update-heading", Static).update(heading)

    def focus_body(self) -> None:
        self.query_one("#update-view").focus()

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.is_running

    def action_start(self, method: str) -> None:
        if self.refused():
            return
        if self.running:
            self.notify("the update is running (x stops it)", severity="warning")
            return
        self.lines, self.finished = [], None
        self.query_one("#update-verdict", Static).update("")
        self._show_steps()
        self.query_one("#update-keys", Static).update(
            Text("x: stop (nothing is stored)   esc: back (stops it too)", "dim")
        )
        self.worker = self.run_update(Method(method))

    def action_stop(self) -> None:
        if self.worker is not None and self.running:
            self.worker.cancel()
            self._line(Text("stopped: nothing stored", "bold yellow"))
            self.query_one("#update-keys", Static).update(Text(KEYS, "dim"))

    @work(group="update", exclusive=True, exit_on_error=False)
    async def run_update(self, method: Method) -> None:
        app = self.console.inventory.apps[self.app_name]
        title = f"update {self.app_name}"
        try:
            async for event in self.console.updater(app, UpdateOptions(method)):
                self.post_message(OperationEvent("update", title, event))
        except MlopsError as exc:
            self.post_message(OperationDone("update", title, str(exc)))
            return
        self.post_message(OperationDone("update", title))

    def on_operation_event(self, message: OperationEvent) -> None:
        if message.kind != "update":
            return
        event = message.event
        if isinstance(event, UpdateStep):
            self._line(Text.assemble(("✓ ", "green"), (f"{event.phase:<7}", "bold"), event.detail))
        elif isinstance(event, GatherProgress) and event.done:
            note = f" ({event.note})" if event.note else ""
            self._line(Text(f"  {event.node}: {event.rows} records{note}", "dim"))
        elif isinstance(event, UpdateJudged):
            self.query_one("#update-verdict", Static).update(side_by_side(event))
        elif isinstance(event, UpdateFinished):
            self.finished = event
            self._finished(event)

    def on_operation_done(self, message: OperationDone) -> None:
        if message.kind != "update":
            return
        if message.error:
            self._line(Text(f"update failed: {message.error}; nothing stored", "bold red"))
            self.query_one("#update-keys", Static).update(Text(KEYS, "dim"))

    def _finished(self, event: UpdateFinished) -> None:
        keys = self.query_one("#update-keys", Static)
        if event.version is None:
            self._line(Text(f"{event.outcome}: {event.detail}", "bold yellow"))
            keys.update(Text(KEYS, "dim"))
            return
        self._line(Text(f"stored v{event.version}: {event.detail}", "bold green"))
        keys.update(
            Text.assemble(
                ("s", "bold"),
                f": swap {self.app_name} to v{event.version} behind its gates\n",
                (KEYS, "dim"),
            )
        )

    def action_swap(self) -> None:
        if self.refused():
            return
        finished = self.finished
        if finished is None or finished.version is None:
            self.notify("no new version to swap to yet: run an update (i or b)")
            return
        if self.app_name in self.console.swaps and self.console.swaps[self.app_name].running:
            self.notify("a swap of this app is running", severity="warning")
            return
        inventory = self.console.inventory
        app = inventory.apps[self.app_name]
        target = inventory.targets[app.target]
        hosts = ", ".join(h.name for c in clusters_of(inventory, target) for h in c.hosts)
        options = SwapOptions(to_version=finished.version, gates=app.gates)
        lines = describe_swap(self.app_name, f"{target.name} ({hosts})", finished.parent, options)

        def answered(yes: bool | None) -> None:
            if yes:
                self.console.start_swap(self.app_name, options)
                self.console.jump("rollout", self.app_name)

        self.app.push_screen(
            ConfirmScreen(f"Swap {self.app_name} to v{finished.version}?", lines, yes="swap"),
            answered,
        )

    def _line(self, text: Text) -> None:
        self.lines.append(text)
        self._show_steps()

    def _show_steps(self) -> None:
        self.query_one("#update-steps", Static).update(Group(*self.lines))
