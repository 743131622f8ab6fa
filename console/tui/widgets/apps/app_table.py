"""The overview's table: one row per app, coloured by health, columns by priority."""

from __future__ import annotations

from rich.text import Text

from cluster.fleet import AppRow, Health
from console.render.provision import traffic_text
from console.render.units import compact, percent
from console.tui.widgets.metrics.spark import spark_text
from console.tui.widgets.table import Column, KeyedTable

# Text marks as well as colour: NO_COLOR and monochrome terminals lose the colour.
HEALTH = {
    Health.OK: ("✓ ok", "green"),
    Health.DEGRADED: ("▲ warn", "yellow"),
    Health.DOWN: ("✗ DOWN", "bold red"),
    Health.UNKNOWN: ("… wait", "dim"),
}


class AppTable(KeyedTable):
    """Keyed by app name; `show` takes the latest rows and each app's req/s history."""

    COLUMNS = (
        Column("app", "app", 12),
        Column("health", "health", 6),
        Column("traffic", "live · split", 16),
        Column("accuracy", "acc (n)", 11, priority=1),
        Column("p95", "p95 ms", 6, priority=1),
        Column("rps", "req/s", 6, priority=2),
        Column("errors", "err", 5, priority=2),
        Column("replicas", "repl", 5, priority=3),
        Column("nodes", "nodes", 5, priority=3),
        Column("drift", "drift", 12, priority=4),
        Column("target", "target", 14, priority=5),
        Column("trend", "req/s trend", 12, priority=5),
    )

    def show(self, rows: tuple[AppRow, ...], trends: dict[str, list[float]]) -> None:
        self.set_rows({r.app: app_cells(r, trends.get(r.app, [])) for r in rows})


def app_cells(row: AppRow, trend: list[float]) -> dict[str, Text]:
    label, style = HEALTH[row.health]
    measured = row.health is not Health.UNKNOWN
    nodes = f"{row.nodes_up}/{row.nodes_total}" + ("!" if row.stale else "")
    accuracy = "-" if row.accuracy is None else f"{row.accuracy:.3f} ({compact(row.labelled)})"
    return {
        "app": Text(row.app, style="bold" if row.health is Health.OK else style),
        "health": Text(label, style=style),
        "traffic": Text(traffic_text(row.versions) or (f"v{row.live}" if row.live else "-")),
        "accuracy": Text(accuracy),
        "p95": Text("-" if row.p95_ms is None else f"{row.p95_ms:.1f}"),
        "rps": Text(f"{row.rps:.1f}" if measured else "-"),
        "errors": Text(
            percent(row.error_rate) if measured else "-",
            style="bold red" if row.error_rate > 0.01 else "",
        ),
        "replicas": Text(
            f"{row.replicas_healthy}/{row.replicas_total}",
            style="yellow" if row.replicas_healthy < row.replicas_total else "",
        ),
        "nodes": Text(nodes, style="bold red" if row.stale else ""),
        "drift": Text(f"⚠ {row.drift}", style="bold yellow") if row.drift else Text("-"),
        "target": Text(f"{row.target} ({row.topology})", style="dim"),
        "trend": Text(spark_text(trend[-12:], 12), style="cyan"),
    }
