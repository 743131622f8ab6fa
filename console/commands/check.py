"""`mlops-tui check`: is every host reachable, and what does it run?"""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cluster.check import CheckFinished, HostChecked, HostCheckFailed, check_hosts
from cluster.transport import Connections
from console import exit_codes
from console.inventory_path import open_inventory
from console.render.check import HostResult, check_document, check_table, failure_lines


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check", help="probe hosts: reachable, OS, CPUs, memory, Python, Ray, onnxruntime"
    )
    p.add_argument(
        "-i", "--inventory", help="inventory file (default: $MLOPS_INVENTORY or ./inventory.yaml)"
    )
    p.add_argument("-t", "--target", action="append", help="only this target's hosts (repeatable)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(run=run)


async def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    inventory = open_inventory(args.inventory, args.target, err=err)
    hosts = inventory.hosts_of(args.target)
    results: list[HostResult] = []
    finished: CheckFinished | None = None
    progress = Progress(
        TextColumn("checking hosts"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    with progress:
        task = progress.add_task("", total=len(hosts))
        async with Connections(inventory) as connections:
            async for event in check_hosts(connections, hosts):
                if isinstance(event, HostChecked | HostCheckFailed):
                    results.append(event)
                    progress.update(task, advance=1, description=event.host)
                elif isinstance(event, CheckFinished):
                    finished = event
    assert finished is not None
    order = {h.name: i for i, h in enumerate(hosts)}
    results.sort(key=lambda r: order[r.host])
    if args.json:
        doc = check_document(
            str(inventory.path), args.target or [], list(inventory.warnings), results, finished
        )
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        out.print(check_table(results))
        for line in failure_lines(results):
            out.print(line)
        style = "green" if finished.failed == 0 else "red"
        out.print(
            f"[{style}]{finished.healthy} healthy, {finished.failed} failed[/] in {finished.duration_s:.2f} s"
        )
    return exit_codes.OK if finished.failed == 0 else exit_codes.FAILED
