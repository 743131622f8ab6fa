"""Render telemetry frames: a live table for people, JSON lines for CI."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from cluster.telemetry.frame import Drift, NodeHealth, Quality, TelemetryFrame
from console.render.units import ms, num

# The monitor's counters of lost records, and their short names.
LOST_SHORT = {
    "unknown": "unknown",  # labels whose prediction never reached the monitor
    "expired": "expired",  # predictions never labelled within the monitor's time to live
    "invalid_labels": "invalid",  # labels the model cannot be scored on
    "dropped_predictions": "dropped",  # predictions a replica could not keep while it was away
}


def drift_text(drift: Drift | None) -> Text:
    if drift is None:
        return Text("-")
    note = drift.note(drift.worst_feature)
    text = f"{drift.max_psi:.2f} ({drift.worst_feature}{': ' + note if note else ''})"
    return Text(text, style="bold yellow" if drift.warning else "")


def labels_text(frame: TelemetryFrame | None) -> Text:
    """The label flow in one line: received, joined, waiting, and each way one was lost."""
    counts = frame.feedback() if frame is not None else {}
    if not counts:
        return Text("labels: no monitor figures yet", "dim")
    text = Text("labels: ", "bold")
    text.append(f"{counts.get('feedback', 0):,} received · {counts.get('joined', 0):,} joined · "
                f"{counts.get('waiting', 0):,} waiting · lost: ")  # fmt: skip
    lost = [f"{counts[k]:,} {short}" for k, short in LOST_SHORT.items() if counts.get(k)]
    text.append(", ".join(lost) if lost else "none", "bold yellow" if lost else "green")
    return text


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
    monitor = frame.monitor.versions if frame.monitor else {}
    for version in sorted(set(frame.versions) | set(monitor)):
        s = frame.versions.get(version)
        q = monitor.get(version)
        m = q.last_n if q else Quality()
        table.add_row(
            version,
            f"{s.requests_per_s:.1f}" if s else "0.0",
            f"{s.error_rate:.1%}" if s else "0.0%",
            ms(s.p50_ms if s else None),
            ms(s.p95_ms if s else None),
            ms(s.p99_ms if s else None),
            f"{s.healthy_replicas}/{s.replicas}" if s and s.replicas is not None else "-",
            num(s.imbalance_max_mean if s else None, ".2f"),
            f"{s.queued:.0f}" if s else "0",
            num(m.accuracy),
            num(m.f1),
            str(m.n),
            drift_text(q.drift if q else None),
        )
    per_cluster = _per_cluster(frame) if len(frame.monitors) > 1 else None
    nodes = Text("nodes: ")
    for name, state in frame.nodes.items():
        nodes.append(f"{name} ", style="green" if state == NodeHealth.OK else "bold red")
        nodes.append(f"({state})  ")
    parts: list[Any] = (
        [table] + ([per_cluster] if per_cluster else []) + [labels_text(frame), nodes]
    )
    parts += [Text(f"  {e}", style="red") for e in frame.errors]
    return Group(*parts)


def _per_cluster(frame: TelemetryFrame) -> Table:
    """Each edge host keeps its own labels: accuracy per host and version."""
    table = Table(title="accuracy per host", title_justify="left")
    for column in ("host", "version", "accuracy", "f1", "labelled"):
        table.add_column(column, justify="left" if column in ("host", "version") else "right")
    for cluster, summary in sorted(frame.monitors.items()):
        for version, quality in sorted(summary.versions.items()):
            m = quality.last_n
            table.add_row(cluster, version, num(m.accuracy), num(m.f1), str(m.n))
    return table
