"""Render `check` results: a rich table for people, one JSON document for machines."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from cluster.check import CheckFinished, HostChecked, HostCheckFailed
from console.render.units import human_bytes, seconds

HostResult = HostChecked | HostCheckFailed


# Every column a host's check fills; `host_cells` is the one place a result becomes cells,
# for `check`'s table and the console's hosts screen alike.
COLUMNS = (
    "host",
    "endpoint",
    "status",
    "os",
    "cpus",
    "memory free / total",
    "python",
    "ray",
    "onnxruntime",
    "time",
)


def host_cells(result: HostResult) -> dict[str, Text]:
    """Every cell that comes from the inventory or a host is plain Text: a user named
    "[/]" or an OS string with brackets must print as written, not as rich markup."""
    cells = {c: Text("") for c in COLUMNS}
    cells.update(host=Text(result.host), endpoint=Text(result.endpoint))
    cells["time"] = Text(seconds(result.duration_s))
    if isinstance(result, HostChecked):
        f = result.facts
        cells.update(
            {
                "status": Text("ok", style="green"),
                "os": Text(f"{f.os} {f.arch}"),
                "cpus": Text(str(f.cpus or "?")),
                "memory free / total": Text(
                    f"{human_bytes(f.memory_available)} / {human_bytes(f.memory_total)}"
                ),
                "python": Text(f.python),
                "ray": _version(f.ray),
                "onnxruntime": _version(f.onnxruntime),
            }
        )
    else:
        cells["status"] = Text("FAILED", style="bold red")
    return cells


def check_table(results: list[HostResult]) -> Table:
    table = Table(title="Hosts", title_justify="left")
    for col in COLUMNS:
        table.add_column(col, no_wrap=True)
    for r in results:
        cells = host_cells(r)
        table.add_row(*(cells[c] for c in COLUMNS))
    return table


def failure_lines(results: list[HostResult]) -> list[Text]:
    """One line per failed host, printed under the table so long reasons are not squeezed."""
    return [
        Text.assemble((f"{r.host}: ", "bold red"), (f"{r.error_type}: {r.error}", ""))
        for r in results
        if isinstance(r, HostCheckFailed)
    ]


def _version(v: str | None) -> Text:
    return Text(v) if v else Text("missing", style="yellow")


def check_document(
    inventory: str,
    targets: list[str],
    warnings: list[str],
    results: list[HostResult],
    done: CheckFinished,
) -> dict[str, Any]:
    hosts = []
    for r in results:
        entry: dict[str, Any] = {
            "name": r.host,
            "endpoint": r.endpoint,
            "ok": isinstance(r, HostChecked),
        }
        if isinstance(r, HostChecked):
            entry["facts"] = r.to_dict()["facts"]
        else:
            entry["error_type"] = r.error_type
            entry["error"] = r.error
        entry["duration_s"] = round(r.duration_s, 4)
        hosts.append(entry)
    return {
        "inventory": inventory,
        "targets": targets,
        "ok": done.failed == 0,
        "healthy": done.healthy,
        "failed": done.failed,
        "duration_s": round(done.duration_s, 4),
        "warnings": warnings,
        "hosts": hosts,
    }
