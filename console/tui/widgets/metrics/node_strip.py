"""Node freshness (which nodes' digests arrive, and why a stale one does not) under the
label flow (how many labels were joined, wait, or were lost, and how)."""

from __future__ import annotations

from rich.text import Text

from cluster.telemetry.frame import NodeHealth, TelemetryFrame
from console.render.telemetry import labels_text
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
    """Updated every interval: the label flow (losses counted), then node freshness."""

    def show(self, frame: TelemetryFrame | None) -> None:
        text = labels_text(frame) if frame is not None else Text()
        self.show_text(Text("\n").join([text, nodes_text(frame)]) if text else nodes_text(frame))
