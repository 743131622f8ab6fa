"""Render telemetry frames: a live table for people, JSON lines for CI."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from cluster.telemetry.collector import TelemetryFrame


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _num(value: Any, fmt: str = ".3f") -> str:
    return "-" if value is None else format(value, fmt)


def _drift(drift: dict[str, Any] | None) -> Text:
    if not drift:
        return Text("-")
    text = f"{drift['max_psi']:.2f} ({drift['worst_feature']})"
    return Text(text, style="bold yellow" if drift["warning"] else "")


def frame_view(frame: TelemetryFrame) -> Group:
    table = Table(title=f"{frame.app} — last {frame.window_s:g} s", title_justify="left")
    for column in (
        "version",
        "req/s",
        "errors",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "replicas",
        "imbalance",
        "queued",
        "accuracy",
        "f1",
        "labelled",
        "drift PSI",
    ):
        table.add_column(column, justify="right" if column != "version" else "left")
    monitor = (frame.monitor or {}).get("versions", {})
    for version in sorted(set(frame.versions) | set(monitor)):
        s = frame.versions.get(version, {})
        m = monitor.get(version, {}).get("last_n", {})
        table.add_row(
            version,
            f"{s.get('requests_per_s', 0):.1f}",
            f"{s.get('error_rate', 0):.1%}",
            _ms(s.get("p50_ms")),
            _ms(s.get("p95_ms")),
            _ms(s.get("p99_ms")),
            f"{s.get('healthy_replicas', 0)}/{s.get('replicas', 0)}",
            _num(s.get("imbalance_max_mean"), ".2f"),
            f"{s.get('queued', 0):.0f}",
            _num(m.get("accuracy")),
            _num(m.get("f1")),
            str(m.get("n", 0)),
            _drift(monitor.get(version, {}).get("drift")),
        )
    per_cluster = _per_cluster(frame) if len(frame.monitors) > 1 else None
    nodes = Text("nodes: ")
    for name, state in frame.nodes.items():
        nodes.append(f"{name} ", style="green" if state == "ok" else "bold red")
        nodes.append(f"({state})  ")
    parts: list[Any] = [table] + ([per_cluster] if per_cluster else []) + [nodes]
    parts += [Text(f"  {e}", style="red") for e in frame.errors]
    return Group(*parts)


def _per_cluster(frame: TelemetryFrame) -> Table:
    """Each edge host keeps its own labels: accuracy per host and version."""
    table = Table(title="accuracy per host", title_justify="left")
    for column in ("host", "version", "accuracy", "f1", "labelled"):
        table.add_column(column, justify="left" if column in ("host", "version") else "right")
    for cluster, summary in sorted(frame.monitors.items()):
        for version, figures in sorted((summary.get("versions") or {}).items()):
            m = figures.get("last_n", {})
            table.add_row(
                cluster, version, _num(m.get("accuracy")), _num(m.get("f1")), str(m.get("n", 0))
            )
    return table
