"""Swaps started from the console: they belong to the app, so leaving a screen never stops one.

Each runs `cluster.rollout.swap.swap` in a worker, as `mlops-tui swap` does; stopping it is
cancelling that worker, which puts the old version back unless every host had passed (the
same as Ctrl-C in the CLI).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.worker import Worker

from cluster.events import Event
from cluster.rollout.events import SwapFinished, SwapOptions, SwapStep


@dataclass
class SwapRun:
    """One swap: what was asked, every event so far, and how it ended."""

    app: str
    options: SwapOptions
    events: list[Event] = field(default_factory=list)
    worker: Worker[None] | None = None
    finished: SwapFinished | None = None
    error: str = ""

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.is_running

    @property
    def passed(self) -> bool:
        """Every host passed: the swap only waits to retire the old replicas now, so promote,
        abort and rollback act on the deployment (as the CLI would) instead of stopping it."""
        return any(isinstance(e, SwapStep) and e.phase == "retire" for e in self.events)
