"""A table with one row per host, updated in place as probe results arrive."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from cluster.check import HostChecked, HostCheckFailed
from cluster.inventory import Host
from console.render.units import human_bytes, seconds

COLUMNS = (
    "host",
    "endpoint",
    "status",
    "os",
    "cpus",
    "memory free",
    "python",
    "ray",
    "onnxruntime",
    "time",
)


class HostTable(DataTable[str | Text]):
    """Rows keyed by host name; `show` replaces a host's row with its latest result."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for column in COLUMNS:
            self.add_column(column, key=column)

    def set_hosts(self, hosts: list[Host]) -> None:
        self.clear()
        for host in hosts:
            self.add_row(
                host.name, host.endpoint, Text("checking…", style="dim"), *[""] * 7, key=host.name
            )

    def show(self, result: HostChecked | HostCheckFailed) -> None:
        if isinstance(result, HostChecked):
            f = result.facts
            values: dict[str, str | Text] = {
                "status": Text("ok", style="green"),
                "os": f"{f.os} {f.arch}",
                "cpus": str(f.cpus or "?"),
                "memory free": f"{human_bytes(f.memory_available)} / {human_bytes(f.memory_total)}",
                "python": f.python,
                "ray": f.ray or Text("missing", style="yellow"),
                "onnxruntime": f.onnxruntime or Text("missing", style="yellow"),
                "time": seconds(result.duration_s),
            }
        else:
            values = {
                "status": Text(f"FAILED: {result.error}", style="red"),
                "time": seconds(result.duration_s),
            }
            values.update(
                {c: "" for c in ("os", "cpus", "memory free", "python", "ray", "onnxruntime")}
            )
        for column, value in values.items():
            self.update_cell(result.host, column, value, update_width=True)
