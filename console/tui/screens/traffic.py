"""promote, abort and rollback from any screen about one app, each confirmed first.

They run `cluster.rollout.manage.change`, as `mlops-tui promote|abort|rollback` do, in a
worker; the confirmation names what will change on each cluster, from the last Serve state
the console read.
"""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.binding import Binding
from textual.worker import Worker

from cluster.errors import MlopsError
from cluster.models.store import ModelStore
from cluster.provision.status import app_state
from cluster.rollout.events import SwapStep
from cluster.rollout.history import History, history_path, previous_version
from cluster.rollout.manage import change, describe_change
from cluster.transport import Connections
from console.tui.messages import OperationDone, OperationEvent
from console.tui.screens.base import ConsoleScreen
from console.tui.screens.confirm import ConfirmScreen

WORDS = {
    "promote": "Promote",
    "abort": "Abort the canary or shadow of",
    "rollback": "Roll back",
}


class TrafficScreen(ConsoleScreen):
    """A screen about one app (`app_name`), with its traffic keys."""

    BINDINGS = [
        Binding("p", "traffic('promote')", "Promote"),
        Binding("a", "traffic('abort')", "Abort"),
        Binding("b", "traffic('rollback')", "Rollback"),
    ]
    MUTATING: ClassVar[frozenset[str]] = frozenset({"traffic"})

    def __init__(self, app_name: str) -> None:
        super().__init__()
        self.app_name = app_name
        self.traffic_worker: Worker[None] | None = None

    def targets_in_view(self) -> list[str]:
        return [self.console.inventory.apps[self.app_name].target]

    @property
    def busy(self) -> bool:
        """An operation of this screen is running (a second one would race it)."""
        return self.traffic_worker is not None and self.traffic_worker.is_running

    def action_traffic(self, action: str) -> None:
        if self.refused():
            return
        if self.busy:
            self.notify("another change of this app is still running", severity="warning")
            return
        self.confirm_change(action)

    @work(group="confirm", exclusive=True, exit_on_error=False)
    async def confirm_change(self, action: str) -> None:
        """Read what runs now, then ask: the confirmation says what this change will do."""
        inventory = self.console.inventory
        previous = previous_version(history_path(inventory.path), self.app_name)
        try:
            async with Connections(inventory) as connections:
                statuses = await app_state(connections, self.app_name)
            described = [describe_change(action, s, previous) for s in statuses]
        except MlopsError as exc:
            self.notify(str(exc), title=f"cannot {action} {self.app_name}", severity="error")
            return
        targets = {to for _, to in described}
        to = targets.pop() if len(targets) == 1 else None  # edge hosts may differ: each decides

        def answered(yes: bool | None) -> None:
            if yes:
                self.traffic_worker = self.run_change(action, to)

        self.app.push_screen(
            ConfirmScreen(
                f"{WORDS[action]} {self.app_name}?", [text for text, _ in described], yes=action
            ),
            answered,
        )

    @work(group="traffic", exit_on_error=False)
    async def run_change(self, action: str, to: str | None = None) -> None:
        inventory = self.console.inventory
        app = inventory.apps[self.app_name]
        history = History(history_path(inventory.path))
        title = f"{action} {self.app_name}"
        try:
            async with Connections(inventory) as connections:
                store = ModelStore(inventory.settings.model_store)
                async for event in change(connections, app, action, history, to, store):
                    self.post_message(OperationEvent("traffic", title, event))
        except MlopsError as exc:
            self.post_message(OperationDone("traffic", title, str(exc)))
            return
        self.post_message(OperationDone("traffic", title))

    def on_operation_event(self, message: OperationEvent) -> None:
        event = message.event
        if message.kind == "traffic" and isinstance(event, SwapStep):
            self.notify(f"{event.cluster}: {event.detail}", title=message.title)

    def on_operation_done(self, message: OperationDone) -> None:
        if message.kind != "traffic":
            return
        if message.error:
            self.notify(message.error, title=f"{message.title} failed", severity="error")
        else:
            self.notify("done", title=message.title)
