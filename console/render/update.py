"""`models update` as text: its steps, and the live version and the candidate side by side."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cluster.updates.gather import GatherProgress
from cluster.updates.update import UpdateFinished, UpdateJudged, UpdateStep


def print_update_event(out: Console, event: object) -> None:
    """One update event as the terminal shows it (the side-by-side table for the verdict)."""
    if isinstance(event, UpdateStep):
        out.print(Text.assemble(("  ✓ ", "green"), f"{event.phase:<7} {event.detail}"))
    elif isinstance(event, UpdateJudged):
        out.print(side_by_side(event))
    elif isinstance(event, UpdateFinished):
        style = "green" if event.outcome == "stored" else "bold yellow"
        out.print(Text(f"{event.outcome}: {event.detail}", style))
    elif isinstance(event, GatherProgress) and event.done and event.note:
        out.print(Text(f"  - {event.node}: {event.note}", "dim"))


def side_by_side(judged: UpdateJudged) -> Table:
    """The live version and the candidate on the same records, the verdict under it."""
    v = judged.verdict
    table = Table(
        title=f"{judged.app}: {judged.method} update of v{judged.parent}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for column in ("", f"newest {judged.held_out} records", "stored holdout"):
        table.add_column(column, justify="right")

    def shown(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    table.add_row(f"live v{judged.parent} {v.metric}", shown(v.live_new), shown(v.live_holdout))
    table.add_row(f"candidate {v.metric}", shown(v.candidate_new), shown(v.candidate_holdout))
    table.caption = v.reason
    return table
