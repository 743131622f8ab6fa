"""Node freshness: which nodes' digests are arriving, and why a stale one is not."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from cluster.telemetry.frame import NodeHealth, TelemetryFrame


def nodes_text(frame: TelemetryFrame | None) -> Text:
    if frame is None:
        return Text("nodes: waiting for the first digest…", "dim")
    text = Text("nodes: ", "bold")
    for name, health in frame.nodes.items():
        ok = health == NodeHealth.OK
        text.append(f"{name} ", "green" if ok else "bold red")
        text.append("ok  " if ok else "STALE  ", "" if ok else "bold red")
    for error in frame.errors:
        text.append(f"\n  {error}", "red")
    return text


class NodeStrip(Static):
    """Updated every interval."""

    def show(self, frame: TelemetryFrame | None) -> None:
        self.update(nodes_text(frame))
