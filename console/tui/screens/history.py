"""The rollout history, newest first, filterable; it follows the file as swaps append to it."""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from cluster.rollout.history import history_entries, history_path, history_problems
from console.tui.screens.base import ConsoleScreen
from console.tui.widgets.history.history_table import HistoryTable

POLL_S = 2.0


class HistoryScreen(ConsoleScreen):
    """`app` set: that app's entries only (clear it with `:history`)."""

    TITLE = "History"
    BINDINGS = [Binding("r", "reload", "Reload")]

    def __init__(self, app_name: str = "") -> None:
        super().__init__()
        self.app_name = app_name
        self._mtime = -1.0

    def compose_body(self) -> ComposeResult:
        yield HistoryTable(id="history")
        yield Static("", id="summary", markup=False)

    def on_mount(self) -> None:
        self.title = f"History {self.app_name}".strip()
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

    def action_reload(self) -> None:
        self._mtime = -1.0
        self.reload()

    @work(exclusive=True, group="history", exit_on_error=False)
    async def reload(self) -> None:
        """Read the file when it changed, then look again in POLL_S (a timer re-armed here)."""
        path = history_path(self.console.inventory.path)
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            mtime = 0.0
        if mtime != self._mtime:
            entries = await asyncio.to_thread(history_entries, path, self.app_name or None)
            problems = await asyncio.to_thread(history_problems, path)
            self._mtime = mtime  # only once shown: a reload cancelled mid-read reads again
            self.query_one(HistoryTable).show(entries)
            what = f"{len(entries)} entries" + (f" for {self.app_name}" if self.app_name else "")
            summary = Text(f"{what} in {path}", "dim")
            if problems:
                summary.append(f"  ▲ {len(problems)} unreadable: {problems[-1]}", "yellow")
            self.query_one("#summary", Static).update(summary)
        if self.is_attached:
            self.set_timer(POLL_S, self.reload)
