"""One app, live: per-version charts, replica load, drift and node freshness; when the live
version scores worse on live labels than its holdout promised, a line says so and `u`
proposes an update from those labels."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll

from cluster.fleet import AppRow
from cluster.models.errors import ModelError
from cluster.models.store import ModelStore
from cluster.telemetry.frame import TelemetryFrame
from cluster.updates.advice import Decay, decay
from console.render.provision import traffic_text
from console.tui.feeds import FleetHistory
from console.tui.screens.traffic import TrafficScreen
from console.tui.widgets.live_text import LiveText
from console.tui.widgets.metrics.drift_panel import DriftPanel
from console.tui.widgets.metrics.node_strip import NodeStrip
from console.tui.widgets.metrics.replica_bars import ReplicaBars
from console.tui.widgets.metrics.version_charts import VersionCharts


def blue_green(row: AppRow | None, frame: TelemetryFrame | None) -> tuple[str | None, str | None]:
    """The live version (blue) and the one it is compared with (green): a canary or shadow,
    else another deployed version, else another version that reports telemetry."""
    live = row.live if row is not None else None
    known = [v.version for v in row.versions] if row is not None else []
    measured = sorted(frame.versions) if frame is not None else []
    if live is None:
        live = measured[0] if measured else None
    others = [v for v in [*known, *measured] if v != live]
    return live, (others[0] if others else None)


class AppLiveScreen(TrafficScreen):
    """Charts every interval from the fleet feed; the history is kept while the console runs."""

    BINDINGS = [
        Binding("s", "rollout", "Swap"),
        Binding("l", "logs", "Logs"),
        Binding("u", "update", "Update"),
        Binding("t", "history", "History", show=False),
    ]
    MUTATING = TrafficScreen.MUTATING | {"update"}

    def __init__(self, app_name: str) -> None:
        super().__init__(app_name)
        self.title = f"App {app_name}"
        self.holdout: dict[str, dict[str, object]] = {}  # version -> its holdout metrics
        self.decay: Decay | None = None

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="app-live"):
            yield LiveText(id="app-heading")
            yield LiveText(id="app-advice")
            yield VersionCharts(id="charts")
            yield ReplicaBars(id="replicas")
            yield DriftPanel(id="drift")
            yield NodeStrip(id="nodes")

    def on_mount(self) -> None:
        self.show_fleet(self.console.fleet)

    def on_screen_resume(self) -> None:
        self.show_fleet(self.console.fleet)

    def focus_body(self) -> None:
        self.query_one("#app-live").focus()

    def show_fleet(self, fleet: FleetHistory) -> None:
        app = self.console.inventory.apps[self.app_name]
        row = fleet.row(self.app_name)
        frames = fleet.of(self.app_name)
        frame = frames[-1] if frames else None
        blue, green = blue_green(row, frame)
        heading = Text(f"{self.app_name}", "bold")
        heading.append(f" on {app.target} · route {app.route} · ")
        split = traffic_text(row.versions) if row is not None else ""
        heading.append(split or "version unknown", "" if split else "dim")
        if frame is not None:
            heading.append(f" · window {frame.window_s:g}s", "dim")
        self.query_one("#app-heading", LiveText).show_text(heading)
        quality = frame.quality(blue) if frame is not None and blue else None
        self.decay = (
            decay(blue, quality.task, quality.last_n, self._holdout(blue))
            if quality is not None and blue
            else None
        )
        advice = self.query_one("#app-advice", LiveText)
        if advice.display != (self.decay is not None):
            advice.display = self.decay is not None
        if self.decay is not None:
            advice.show_text(
                Text.assemble(
                    ("▼ ", "bold yellow"),
                    (self.decay.text(), "yellow"),
                    ("\nu", "bold"),
                    ": train an update from these labels",
                )
            )
        with self.app.batch_update():
            self.query_one(VersionCharts).show(frames, blue, green)
            self.query_one(ReplicaBars).show(
                frame.versions.get(blue) if frame is not None and blue else None, blue or "?"
            )
            versions = [v for v in (blue, green) if v is not None]
            self.query_one(DriftPanel).show(
                [(v, frame.quality(v) if frame is not None else None) for v in versions]
            )
            self.query_one(NodeStrip).show(frame)

    def _holdout(self, version: str) -> dict[str, object]:
        """The version's holdout metrics from the store's meta.json (read once)."""
        if version not in self.holdout:
            store = ModelStore(self.console.inventory.settings.model_store)
            model = self.console.inventory.apps[self.app_name].model
            try:
                metrics = store.get(model, version, check=False).meta.raw.get("metrics")
            except ModelError:
                metrics = None
            self.holdout[version] = metrics if isinstance(metrics, dict) else {}
        return self.holdout[version]

    def action_update(self) -> None:
        self.console.jump("update", self.app_name)

    def action_rollout(self) -> None:
        self.console.jump("rollout", self.app_name)

    def action_history(self) -> None:
        self.console.jump("history", self.app_name)

    def action_logs(self) -> None:
        inventory = self.console.inventory
        target = inventory.targets[inventory.apps[self.app_name].target]
        self.console.jump("logs", target.hosts[0])
