"""Render `check` results: a rich table for people, one JSON document for machines."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from cluster.check import CheckFinished, HostChecked, HostCheckFailed
from console.render.units import human_bytes, seconds

HostResult = HostChecked | HostCheckFailed


def check_table(results: list[HostResult]) -> Table:
    """Every cell that comes from the inventory or a host is plain Text: a user named
    "[/]" or an OS string with brackets must print as written, not as rich markup."""
    table = Table(title="Hosts", title_justify="left")
    for col in (
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
    ):
        table.add_column(col, no_wrap=True)
    for r in results:
        if isinstance(r, HostChecked):
            f = r.facts
            mem = f"{human_bytes(f.memory_available)} / {human_bytes(f.memory_total)}"
            table.add_row(
                Text(r.host),
                Text(r.endpoint),
                Text("ok", style="green"),
                Text(f"{f.os} {f.arch}"),
                Text(str(f.cpus or "?")),
                Text(mem),
                Text(f.python),
                _version(f.ray),
                _version(f.onnxruntime),
                Text(seconds(r.duration_s)),
            )
        else:
            table.add_row(
                Text(r.host),
                Text(r.endpoint),
                Text("FAILED", style="bold red"),
                *[Text("")] * 6,
                Text(seconds(r.duration_s)),
            )
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
