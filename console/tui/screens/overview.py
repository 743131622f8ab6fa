"""The start screen: every app across every target, one row each, live."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable

from console.tui.feeds import FleetHistory
from console.tui.screens.base import ConsoleScreen
from console.tui.widgets.apps.app_table import AppTable
from console.tui.widgets.live_text import LiveText


class OverviewScreen(ConsoleScreen):
    """Apps, their live version and split, load, latency, errors, accuracy and drift."""

    TITLE = "Apps"
    BINDINGS = [
        Binding("enter", "open", "Open"),
        Binding("s", "rollout", "Swap"),
        Binding("h", "jump('hosts')", "Hosts", show=False),
        Binding("m", "jump('models')", "Models", show=False),
        Binding("t", "jump('history')", "History", show=False),
        Binding("p", "jump('plan')", "Plan", show=False),
    ]

    def compose_body(self) -> ComposeResult:
        yield AppTable(id="apps")
        yield LiveText(id="app-detail")
        yield LiveText(id="fleet-status")

    def on_mount(self) -> None:
        if not self.console.inventory.apps:
            self.query_one("#app-detail", LiveText).show_text(
                Text(
                    "No apps in the inventory yet: add one under `apps:` (see inventory.example.yaml)."
                )
            )
        self.show_fleet(self.console.fleet)

    def on_screen_resume(self) -> None:
        self.show_fleet(self.console.fleet)

    def show_fleet(self, fleet: FleetHistory) -> None:
        snapshot = fleet.latest
        if snapshot is None:
            self.query_one("#fleet-status", LiveText).show_text(
                Text("connecting to the fleet…", "dim")
            )
            return
        table = self.query_one(AppTable)
        table.show(snapshot.rows, fleet.trends())
        self._detail()
        stale = sorted({n for r in snapshot.rows for n in r.stale})
        nodes = sum(r.nodes_total for r in snapshot.rows)
        status = Text(f"{len(snapshot.rows)} apps · {nodes} nodes", "dim")
        if stale:
            status.append(f"   stale: {', '.join(stale)}", "bold red")
        self.query_one("#fleet-status", LiveText).show_text(status)

    @on(DataTable.RowHighlighted, "#apps")
    def _highlighted(self) -> None:
        self._detail()

    def _detail(self) -> None:
        key = self.query_one(AppTable).current_key
        row = self.console.fleet.row(key) if key else None
        if row is None:
            return
        text = Text(f"{row.app} on {row.target} ({row.topology}): ", "bold")
        text.append(
            "; ".join(row.problems) if row.problems else "healthy",
            "" if not row.problems else "yellow",
        )
        self.query_one("#app-detail", LiveText).show_text(text)

    @on(DataTable.RowSelected, "#apps")
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        key = self.query_one(AppTable).current_key
        if key:
            self.console.jump("app", key)

    def action_rollout(self) -> None:
        key = self.query_one(AppTable).current_key
        if key:
            self.console.jump("rollout", key)

    def action_jump(self, place: str) -> None:
        self.console.jump(place, "")
