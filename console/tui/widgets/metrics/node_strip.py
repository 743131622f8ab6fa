"""Node freshness: which nodes' digests are arriving, and why a stale one is not."""

from __future__ import annotations

from rich.text import Text

from cluster.telemetry.frame import NodeHealth, TelemetryFrame
from console.tui.widgets.live_text import LiveText

NAMED = 12  # up to this many nodes are named one by one; a bigger fleet is summed up
ERRORS = 5


def nodes_text(frame: TelemetryFrame | None) -> Text:
    if frame is None:
        return Text("nodes: waiting for the first digest…", "dim")
    text = Text("nodes: ", "bold")
    stale = frame.stale_nodes
    if len(frame.nodes) <= NAMED:
        for name, health in frame.nodes.items():
            ok = health == NodeHealth.OK
            text.append(f"{name} ", "green" if ok else "bold red")
            text.append("ok  " if ok else "STALE  ", "" if ok else "bold red")
    else:
        fresh = len(frame.nodes) - len(stale)
        text.append(f"{fresh}/{len(frame.nodes)} fresh", "green" if not stale else "yellow")
        if stale:
            more = f" and {len(stale) - NAMED} more" if len(stale) > NAMED else ""
            text.append(f" · STALE: {', '.join(stale[:NAMED])}{more}", "bold red")
    for error in frame.errors[:ERRORS]:
        text.append(f"\n  {error}", "red")
    if len(frame.errors) > ERRORS:
        text.append(f"\n  … {len(frame.errors) - ERRORS} more nodes with errors", "red")
    return text


class NodeStrip(LiveText):
    """Updated every interval."""

    def show(self, frame: TelemetryFrame | None) -> None:
        self.show_text(nodes_text(frame))
