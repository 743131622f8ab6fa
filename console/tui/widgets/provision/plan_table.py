"""What apply would change, one row per action on a host."""

from __future__ import annotations

from rich.text import Text

from cluster.provision.events import PlanReady
from console.tui.widgets.table import Column, KeyedTable


class PlanTable(KeyedTable):
    """Keyed by position; blocked hosts and unreachable ones are rows too, in red."""

    COLUMNS = (
        Column("host", "host", 12),
        Column("action", "action", 12),
        Column("detail", "detail", 44),
        Column("cluster", "cluster", 12, priority=1),
    )

    def show(self, plan: PlanReady) -> None:
        rows: dict[str, dict[str, Text]] = {}
        for i, a in enumerate(plan.actions):
            rows[f"a{i}"] = {
                "cluster": Text(a.cluster),
                "host": Text(a.host),
                "action": Text(a.kind, "bold"),
                "detail": Text(a.detail),
            }
        for i, line in enumerate(plan.unreachable):
            host, _, why = line.partition(": ")
            rows[f"u{i}"] = {
                "host": Text(host),
                "action": Text("UNREACHABLE", "bold red"),
                "detail": Text(why, "red"),
            }
        for i, line in enumerate(plan.errors):
            host, _, why = line.partition(": ")
            rows[f"e{i}"] = {
                "host": Text(host),
                "action": Text("BLOCKED", "bold red"),
                "detail": Text(why or line, "red"),
            }
        self.set_rows(rows)
