"""Where the console's live data comes from, and the history its charts draw.

The app follows the whole fleet once (`cluster.fleet.FleetWatch`), for as long as it runs;
the overview and each app's live screen read the same snapshots. Tests and benchmarks pass a
source of recorded snapshots instead, so screens render the same frames every time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cluster.check import CheckEvent, check_hosts
from cluster.events import Event
from cluster.fleet import AppRow, FleetSnapshot, FleetWatch
from cluster.inventory import App, Inventory
from cluster.telemetry.frame import TelemetryFrame
from cluster.transport import Connections

FleetSource = Callable[[], AsyncIterator[FleetSnapshot]]
Checker = Callable[[Inventory], AsyncIterator[CheckEvent]]
Updater = Callable[[App, "UpdateOptions"], AsyncIterator[Event]]
if TYPE_CHECKING:
    from cluster.updates.update import UpdateOptions

KEEP_FRAMES = 300  # five minutes at one frame a second


def live_source(inventory: Inventory, interval: float = 1.0, window_s: float = 10.0) -> FleetSource:
    """Snapshots of the real fleet: every node's digest over SSH, Serve state every few s."""

    async def snapshots() -> AsyncIterator[FleetSnapshot]:
        async with Connections(inventory) as connections:
            watch = FleetWatch(connections, interval=interval, window_s=window_s)
            yield watch.snapshot_without_telemetry()
            async for snapshot in watch.snapshots():
                yield snapshot

    return snapshots


async def live_checker(inventory: Inventory) -> AsyncIterator[CheckEvent]:
    """`mlops-tui check` for the hosts screen: every host probed over its own connection."""
    async with Connections(inventory) as connections:
        async for event in check_hosts(connections, list(inventory.hosts.values())):
            yield event


def live_updater(inventory: Inventory) -> Updater:
    """`models update` for the update screen: the app's records over SSH, the local store."""

    async def update(app: App, options: UpdateOptions) -> AsyncIterator[Event]:
        from cluster.models.store import ModelStore  # scikit-learn only once an update runs
        from cluster.updates.update import update_model

        store = ModelStore(inventory.settings.model_store)
        async with Connections(inventory) as connections:
            async for event in update_model(connections, store, app, options):
                yield event

    return update


@dataclass
class FleetHistory:
    """The latest snapshot, and each app's recent frames for the charts."""

    keep: int = KEEP_FRAMES
    latest: FleetSnapshot | None = None
    frames: dict[str, deque[TelemetryFrame]] = field(default_factory=dict)
    rps: dict[str, deque[float]] = field(default_factory=dict)  # each app's req/s, per frame

    def add(self, snapshot: FleetSnapshot) -> None:
        self.latest = snapshot
        for app, frame in snapshot.frames.items():
            self.frames.setdefault(app, deque(maxlen=self.keep)).append(frame)
        for row in snapshot.rows:
            if row.app in snapshot.frames:
                self.rps.setdefault(row.app, deque(maxlen=self.keep)).append(row.rps)

    def trends(self) -> dict[str, list[float]]:
        return {app: list(values) for app, values in self.rps.items()}

    def row(self, app: str) -> AppRow | None:
        if self.latest is None:
            return None
        return next((r for r in self.latest.rows if r.app == app), None)

    def of(self, app: str) -> list[TelemetryFrame]:
        return list(self.frames.get(app, ()))
