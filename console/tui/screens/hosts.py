"""The hosts screen: every host of the inventory, probed in a worker so the UI never freezes."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from cluster.check import CheckFinished, HostChecked, HostCheckFailed
from cluster.errors import MlopsError
from console.render.check import failure_lines
from console.tui.messages import CheckDone, HostResult, OperationFailed
from console.tui.screens.base import ConsoleScreen
from console.tui.widgets.hosts.host_detail import HostDetail
from console.tui.widgets.hosts.host_table import HostTable


class HostsScreen(ConsoleScreen):
    """Like `mlops-tui check`, live: rows fill in as hosts answer; `r` probes again."""

    TITLE = "Hosts"
    BINDINGS = [
        Binding("r", "recheck", "Re-check"),
        Binding("enter", "detail", "Detail"),
        Binding("l", "logs", "Logs"),
    ]

    def compose_body(self) -> ComposeResult:
        for warning in self.console.inventory.warnings:
            yield Static(f"⚠ {warning}", classes="warning", markup=False)
        yield HostTable(id="hosts")
        yield HostDetail("", id="host-detail", markup=False)
        yield Static("", id="summary", markup=False)

    def on_mount(self) -> None:
        self.query_one(HostDetail).display = False
        self.action_recheck()

    def action_recheck(self) -> None:
        hosts = list(self.console.inventory.hosts.values())
        self.query_one(HostTable).set_hosts(hosts)
        self.query_one("#summary", Static).update(f"checking {len(hosts)} host(s)…")
        self.run_check()

    @work(exclusive=True, group="check", exit_on_error=False)
    async def run_check(self) -> None:
        try:
            async for event in self.console.checker(self.console.inventory):
                if isinstance(event, HostChecked | HostCheckFailed):
                    self.post_message(HostResult(event))
                elif isinstance(event, CheckFinished):
                    self.post_message(CheckDone(event.healthy, event.failed, event.duration_s))
        except MlopsError as exc:
            self.post_message(OperationFailed("check", str(exc)))

    def on_host_result(self, message: HostResult) -> None:
        self.query_one(HostTable).show(message.result)
        self._refresh_detail()

    def on_check_done(self, message: CheckDone) -> None:
        summary = self.query_one("#summary", Static)
        summary.set_class(message.failed > 0, "failed")
        text = Text(
            f"{message.healthy} healthy, {message.failed} failed in {message.duration_s:.2f} s"
            "   (r: re-check, enter: detail)"
        )
        for line in failure_lines(list(self.query_one(HostTable).results.values())):
            text.append("\n")
            text.append_text(line)
        summary.update(text)

    def on_operation_failed(self, message: OperationFailed) -> None:
        summary = self.query_one("#summary", Static)
        summary.add_class("failed")
        summary.update(f"{message.what} failed: {message.error}")

    @on(DataTable.RowSelected, "#hosts")
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_detail()

    @on(DataTable.RowHighlighted, "#hosts")
    def _highlighted(self) -> None:
        self._refresh_detail()

    def action_detail(self) -> None:
        pane = self.query_one(HostDetail)
        pane.display = not pane.display
        self._refresh_detail()

    def _refresh_detail(self) -> None:
        pane = self.query_one(HostDetail)
        table = self.query_one(HostTable)
        key = table.current_key
        cells = table.cells(key) if key else None
        if pane.display and key and cells is not None:
            pane.show(key, cells, table.results.get(key))

    def action_logs(self) -> None:
        key = self.query_one(HostTable).current_key
        if key:
            self.console.jump("logs", key)
