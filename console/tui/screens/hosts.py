"""The hosts screen: every host of the inventory, probed in a worker so the UI never freezes."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from cluster.check import CheckFinished, HostChecked, HostCheckFailed, check_hosts
from cluster.errors import MlopsError
from cluster.inventory import Inventory
from cluster.transport import Connections
from console.tui.messages import CheckCrashed, CheckDone, HostResult
from console.tui.widgets.hosts.host_table import HostTable


class HostsScreen(Screen[None]):
    """Like `mlops-tui check`, live: rows fill in as hosts answer; `r` probes again."""

    BINDINGS = [Binding("r", "recheck", "Re-check"), Binding("q", "app.quit", "Quit")]

    def __init__(self, inventory: Inventory) -> None:
        super().__init__()
        self.inventory = inventory

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"inventory: {self.inventory.path}", id="inventory-path")
        for warning in self.inventory.warnings:
            yield Static(f"⚠ {warning}", classes="warning", markup=False)
        yield HostTable(id="hosts")
        yield Static("", id="summary")
        yield Footer()

    def on_mount(self) -> None:
        self.action_recheck()

    def action_recheck(self) -> None:
        self.query_one(HostTable).set_hosts(list(self.inventory.hosts.values()))
        self.query_one("#summary", Static).update(f"checking {len(self.inventory.hosts)} host(s)…")
        self.run_check()

    @work(exclusive=True, group="check")
    async def run_check(self) -> None:
        try:
            async with Connections(self.inventory) as connections:
                async for event in check_hosts(connections, list(self.inventory.hosts.values())):
                    if isinstance(event, HostChecked | HostCheckFailed):
                        self.post_message(HostResult(event))
                    elif isinstance(event, CheckFinished):
                        self.post_message(CheckDone(event.healthy, event.failed, event.duration_s))
        except MlopsError as exc:
            self.post_message(CheckCrashed(str(exc)))

    def on_host_result(self, message: HostResult) -> None:
        self.query_one(HostTable).show(message.result)

    def on_check_done(self, message: CheckDone) -> None:
        summary = self.query_one("#summary", Static)
        summary.set_class(message.failed > 0, "failed")
        summary.update(
            f"{message.healthy} healthy, {message.failed} failed in {message.duration_s:.2f} s   (r: re-check)"
        )

    def on_check_crashed(self, message: CheckCrashed) -> None:
        summary = self.query_one("#summary", Static)
        summary.add_class("failed")
        summary.update(f"check failed: {message.error}")
