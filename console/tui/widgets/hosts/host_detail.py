"""Everything known about one host: the columns the table had no room for, and its error."""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from cluster.check import HostChecked, HostCheckFailed


def detail(
    name: str, cells: Mapping[str, Text], result: HostChecked | HostCheckFailed | None
) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row(Text("host"), Text(name))
    for column, value in cells.items():
        if column != "host" and value.plain:
            grid.add_row(Text(column), value)
    if isinstance(result, HostCheckFailed):
        grid.add_row(Text("error"), Text(f"{result.error_type}: {result.error}", "red"))
    elif isinstance(result, HostChecked):
        f = result.facts
        grid.add_row(Text("hostname"), Text(f.hostname))
        grid.add_row(Text("python path"), Text(f.python_path))
        if f.load_1m is not None:
            grid.add_row(Text("load (1 min)"), Text(f"{f.load_1m:.2f}"))
    return grid


class HostDetail(Static):
    """Shown under the table with Enter; follows the cursor while open."""

    def show(
        self, name: str, cells: Mapping[str, Text], result: HostChecked | HostCheckFailed | None
    ) -> None:
        self.update(detail(name, cells, result))
