"""A swap's steps as they happen: deploy, ready, baseline, shadow, shift, promote, retire..."""

from __future__ import annotations

import time

from rich.text import Text

from cluster.rollout.events import SwapStep
from console.tui.widgets.table import Column, KeyedTable

PROBLEMS = ("rollback", "rollback_failed", "holdout")


class SwapSteps(KeyedTable):
    """Keyed by arrival; newest last, the cursor follows it."""

    COLUMNS = (
        Column("at", "at", 8, priority=1),
        Column("cluster", "cluster", 10, priority=1),
        Column("phase", "phase", 9),
        Column("detail", "detail", 56),
    )

    def add(self, step: SwapStep) -> None:
        style = "bold yellow" if step.phase in PROBLEMS else ""
        key = str(len(self.keys))
        cells = {
            "at": Text(time.strftime("%H:%M:%S", time.localtime(step.at)), "dim"),
            "cluster": Text(step.cluster),
            "phase": Text(step.phase, style or "bold"),
            "detail": Text(step.detail, style),
        }
        self.put({key: cells})
        self.move_cursor(row=self.row_count - 1, animate=False)
