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

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._rows: dict[str, dict[str, Text]] = {}

    def reset(self) -> None:
        self._rows = {}
        self.set_rows(self._rows)

    def add(self, event: Event) -> bool:
        """Show the event; True when a step ended (for the progress bar)."""
        ended = False
        if isinstance(event, StepStarted):
            key = f"{event.host}/{event.step}"
            self._rows[key] = {"host": Text(event.host), "step": Text(event.step),
                               "state": Text("… run", "yellow"), "detail": Text(event.detail)}  # fmt: skip
        elif isinstance(event, StepDone):
            key = f"{event.host}/{event.step}"
            self._rows[key] = {"host": Text(event.host), "step": Text(event.step),
                               "state": Text("✓ done", "green"), "detail": Text(event.detail),
                               "time": Text(seconds(event.duration_s))}  # fmt: skip
            ended = True
        elif isinstance(event, StepFailed):
            key = f"{event.host}/{event.step}"
            self._rows[key] = {"host": Text(event.host), "step": Text(event.step),
                               "state": Text("✗ FAIL", "bold red"), "detail": Text(event.error, "red"),
                               "time": Text(seconds(event.duration_s))}  # fmt: skip
            ended = True
        elif isinstance(event, HostSkipped):
            self._rows[f"{event.host}/skip"] = {"host": Text(event.host), "step": Text("-"),
                                               "state": Text("- skip", "yellow"), "detail": Text(event.reason)}  # fmt: skip
        else:
            return False
        self.set_rows(self._rows)
        return ended
