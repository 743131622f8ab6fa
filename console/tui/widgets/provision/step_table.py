"""apply and destroy as they run: one row per host step, its state and how long it took."""

from __future__ import annotations

from rich.text import Text

from cluster.events import Event
from cluster.provision.events import HostSkipped, StepDone, StepFailed, StepStarted
from console.render.units import seconds
from console.tui.widgets.table import Column, KeyedTable


class StepTable(KeyedTable):
    """Keyed HOST/STEP; a step's row changes state in place."""

    COLUMNS = (
        Column("host", "host", 12),
        Column("step", "step", 12),
        Column("state", "state", 7),
        Column("detail", "detail", 34),
        Column("time", "time", 7, priority=1),
    )

    def add(self, event: Event) -> bool:
        """Show the event; True when a step ended (for the progress bar)."""
        if isinstance(event, StepStarted):
            state, detail, took = Text("… run", "yellow"), Text(event.detail), None
        elif isinstance(event, StepDone):
            state, detail, took = Text("✓ done", "green"), Text(event.detail), event.duration_s
        elif isinstance(event, StepFailed):
            state, detail, took = (
                Text("✗ FAIL", "bold red"),
                Text(event.error, "red"),
                event.duration_s,
            )
        elif isinstance(event, HostSkipped):
            cells = {"host": Text(event.host), "step": Text("-"), "state": Text("- skip", "yellow"),
                     "detail": Text(event.reason)}  # fmt: skip
            self.put({f"{event.host}/skip": cells})
            return False
        else:
            return False
        cells = {
            "host": Text(event.host),
            "step": Text(event.step),
            "state": state,
            "detail": detail,
        }
        if took is not None:
            cells["time"] = Text(seconds(took))
        self.put({f"{event.host}/{event.step}": cells})
        return took is not None
