"""Per-version time series, the live version (blue) and the other one (green) side by side.

One row per metric, one line high: a sparkline of the recent frames and the latest value for
each version. Rows update in place every interval (no flicker); 80 columns fit two charts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget

from cluster.fleet import version_accuracy
from cluster.telemetry.frame import TelemetryFrame
from console.render.units import percent
from console.tui.widgets.live_text import LiveText
from console.tui.widgets.metrics.spark import spark_text


@dataclass(frozen=True)
class Metric:
    """A charted figure: how to read it from a frame, and how to print its latest value."""

    key: str
    label: str
    read: Callable[[TelemetryFrame, str], float | None]
    show: Callable[[float | None], str]


def _stat(name: str) -> Callable[[TelemetryFrame, str], float | None]:
    def read(frame: TelemetryFrame, version: str) -> float | None:
        stats = frame.versions.get(version)
        value = getattr(stats, name, None) if stats is not None else None
        return float(value) if isinstance(value, int | float) else None

    return read


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


METRICS = (
    Metric("rps", "req/s", _stat("requests_per_s"), lambda v: "-" if v is None else f"{v:.1f}/s"),
    Metric("p50", "p50", _stat("p50_ms"), _ms),
    Metric("p95", "p95", _stat("p95_ms"), _ms),
    Metric("p99", "p99", _stat("p99_ms"), _ms),
    Metric("errors", "errors", _stat("error_rate"), lambda v: "-" if v is None else percent(v)),
    Metric(
        "accuracy",
        "acc",
        lambda f, v: version_accuracy(f, v)[0],
        lambda v: "-" if v is None else f"{v:.3f}",
    ),
)


def series(
    frames: list[TelemetryFrame], version: str, metric: Metric
) -> tuple[list[float], float | None]:
    """The metric over the frames (gaps carry the last value, 0 before any) and its latest."""
    values: list[float] = []
    last: float | None = None
    for frame in frames:
        value = metric.read(frame, version)
        last = value if value is not None else last
        values.append(last if last is not None else 0.0)
    latest = metric.read(frames[-1], version) if frames else None
    return values, latest


LABEL = 7
VALUE = 11


class ChartRow(Widget):
    """One metric on one line: label, then per version a sparkline and its latest value,
    drawn at whatever width the row has."""

    DEFAULT_CSS = """
    ChartRow {
        height: 1;
        padding: 0 1;
    }
    """

    def __init__(self, metric: Metric) -> None:
        super().__init__(classes="chart-row")
        self.metric = metric
        self.sides: list[tuple[list[float], str, str]] = []  # (values, latest, style)

    def show(self, frames: list[TelemetryFrame], blue: str | None, green: str | None) -> None:
        self.sides = []
        for version, style in ((blue, "blue"), (green, "green")):
            if version is not None:
                values, latest = series(frames, version, self.metric)
                self.sides.append((values, self.metric.show(latest), style))
        self.refresh()

    def render(self) -> Text:
        text = Text(f"{self.metric.label:<{LABEL}}", "dim", no_wrap=True, overflow="crop")
        if not self.sides:
            return text
        room = max(0, self.size.width - LABEL - VALUE * len(self.sides) - 2 * len(self.sides))
        width = room // len(self.sides)
        for values, latest, style in self.sides:
            text.append(f"{spark_text(values, width):<{width}}", style)
            text.append(f" {latest:<{VALUE}} ", "bold" if style == "blue" else "")
        return text


class VersionCharts(Vertical):
    """The header naming both versions, then one ChartRow per metric."""

    DEFAULT_CSS = """
    VersionCharts {
        height: auto;
    }
    """

    def compose(self) -> ComposeResult:
        yield LiveText(id="chart-heading")
        for metric in METRICS:
            yield ChartRow(metric)

    def show(self, frames: list[TelemetryFrame], blue: str | None, green: str | None) -> None:
        heading = Text(" " * LABEL)
        if blue is not None:
            heading.append(f"v{blue} (live)", "bold blue")
        if green is not None:
            heading.append("   vs   ")
            heading.append(f"v{green}", "bold green")
        if blue is None:
            heading.append("no version reports telemetry yet", "dim")
        self.query_one("#chart-heading", LiveText).show_text(heading)
        for row in self.query(ChartRow):
            row.show(frames, blue, green)
