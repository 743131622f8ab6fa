"""A table with one row per host, updated in place as probe results arrive."""

from __future__ import annotations

from rich.text import Text

from cluster.check import HostChecked, HostCheckFailed
from cluster.inventory import Host
from console.render.check import host_cells
from console.tui.widgets.table import Column, KeyedTable

HostResult = HostChecked | HostCheckFailed


class HostTable(KeyedTable):
    """Rows keyed by host name; cells come from `host_cells`, as `check`'s table does."""

    COLUMNS = (
        Column("host", "host", 12),
        Column("status", "status", 8),
        Column("endpoint", "endpoint", 22, priority=1),
        Column("ray", "ray", 8, priority=1),
        Column("time", "time", 7, priority=2),
        Column("python", "python", 8, priority=2),
        Column("cpus", "cpus", 4, priority=3),
        Column("memory free / total", "memory free / total", 21, priority=3),
        Column("os", "os", 16, priority=4),
        Column("onnxruntime", "onnxruntime", 11, priority=4),
    )

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.results: dict[str, HostResult] = {}

    def set_hosts(self, hosts: list[Host]) -> None:
        self.results = {}
        self.set_rows(
            {
                h.name: {
                    "host": Text(h.name),
                    "endpoint": Text(h.endpoint),
                    "status": Text("checking…", style="dim"),
                }
                for h in hosts
            }
        )

    def show(self, result: HostResult) -> None:
        self.results[result.host] = result
        self.put({result.host: host_cells(result)})
