"""A node's Serve logs, followed over SSH as they are written; `/` filters them."""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from cluster.errors import MlopsError
from cluster.inventory import Host
from cluster.logs import LogLine, follow_logs
from cluster.transport import Connections
from console.tui.messages import LogLines
from console.tui.screens.base import ConsoleScreen, Filterable
from console.tui.widgets.logs.log_view import LogView

BATCH_S = 0.2  # lines are handed to the view at most this often
RETRY_S = 5.0


class LogsScreen(ConsoleScreen):
    """Follows until the screen closes; a lost connection is retried every few seconds."""

    BINDINGS = [Binding("f", "toggle_follow", "Follow on/off")]

    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host
        self.title = f"Logs {host}"

    def compose_body(self) -> ComposeResult:
        yield LogView(id="log")
        yield Static("", id="summary", markup=False)

    @property
    def table(self) -> Filterable | None:
        return self.query_one(LogView)

    def on_mount(self) -> None:
        self.follow()
        self.query_one(LogView).focus()

    def action_toggle_follow(self) -> None:
        view = self.query_one(LogView)
        view.auto_scroll = not view.auto_scroll
        self.notify("following" if view.auto_scroll else "paused scrolling (lines still arrive)")

    @work(exclusive=True, group="logs", exit_on_error=False)
    async def follow(self) -> None:
        inventory = self.console.inventory
        host = inventory.hosts[self.host]
        summary = self.query_one("#summary", Static)
        while True:
            summary.update(Text(f"following {host.name} ({host.endpoint})", "dim"))
            try:
                async with Connections(inventory) as connections:
                    await self._read(connections, host)
            except MlopsError as exc:
                summary.update(Text(f"{exc}; trying again in {RETRY_S:g}s", "red"))
            await asyncio.sleep(RETRY_S)

    async def _read(self, connections: Connections, host: Host) -> None:
        """Lines reach the view in batches, at most every BATCH_S, and never wait longer."""
        pending: list[LogLine] = []

        async def read() -> None:
            async for line in follow_logs(connections, host):
                pending.append(line)

        reader = asyncio.create_task(read())
        try:
            while not reader.done():
                await asyncio.wait({reader}, timeout=BATCH_S)
                if pending:
                    self.post_message(LogLines(pending[:]))
                    pending.clear()
            reader.result()  # how it ended: StreamEnded (an MlopsError) or another error
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    def on_log_lines(self, message: LogLines) -> None:
        self.query_one(LogView).add(message.lines)
