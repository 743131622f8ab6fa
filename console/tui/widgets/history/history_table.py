"""The rollout history, newest first: when, who, app, what happened."""

from __future__ import annotations

from rich.text import Text

from cluster.rollout.events import SwapOutcome
from cluster.rollout.history import HistoryEntry
from console.tui.widgets.table import Column, KeyedTable

STYLE = {
    SwapOutcome.PROMOTED.value: "green",
    SwapOutcome.ROLLED_BACK.value: "bold yellow",
    SwapOutcome.PARTIAL.value: "bold yellow",
    SwapOutcome.GATE_FAILED.value: "bold red",
    SwapOutcome.FAILED.value: "bold red",
    SwapOutcome.INTERRUPTED.value: "bold yellow",
}


class HistoryTable(KeyedTable):
    """Keyed by line number in the file (entries never change once written)."""

    COLUMNS = (
        Column("at", "at (UTC)", 19, priority=1),
        Column("app", "app", 10),
        Column("kind", "kind", 13),
        Column("what", "what", 60),
        Column("who", "who", 18, priority=2),
    )

    def show(self, entries: list[HistoryEntry]) -> None:
        rows = {}
        for number, entry in reversed(list(enumerate(entries))):
            style = STYLE.get(entry.outcome or "", "")
            if entry.kind == "gates":
                style = "green" if entry.fields.get("passed") else "bold red"
            rows[str(number)] = {
                "at": Text(entry.at.replace("T", " ").rstrip("Z")),
                "app": Text(entry.app),
                "kind": Text(entry.kind, style),
                "what": Text(entry.what, style),
                "who": Text(entry.who, "dim"),
            }
        self.set_rows(rows)
