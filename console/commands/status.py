"""`mlops-tui status`: one snapshot per target for scripts and CI. Exit 0 as-inventory, 1 otherwise."""

from __future__ import annotations

import argparse

from rich.console import Console

from cluster.provision.status import AppStatus, NodeStatus, status
from cluster.transport import Connections
from console import exit_codes
from console.commands.provision_common import add_target_args
from console.inventory_path import open_inventory
from console.render.provision import json_line, status_tables


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "status", help="nodes, Ray version, apps, live versions, weights, replicas, health"
    )
    add_target_args(p)
    p.set_defaults(run=run)


async def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    inventory = open_inventory(args.inventory, args.target, err=err)
    nodes: list[NodeStatus] = []
    apps: list[AppStatus] = []
    async with Connections(inventory) as connections:
        with err.status("reading status", spinner="dots"):
            async for event in status(connections, args.target):
                if isinstance(event, NodeStatus):
                    nodes.append(event)
                elif isinstance(event, AppStatus):
                    apps.append(event)
    healthy = all(n.up for n in nodes) and all(a.healthy for a in apps)
    if args.json:
        json_line(
            {
                "ok": healthy,
                "nodes": [n.to_dict() for n in nodes],
                "apps": [a.to_dict() for a in apps],
                # e.g. TLS off: on stderr too, and here for scripts that read only JSON
                "warnings": list(inventory.warnings),
            }
        )
    else:
        for table in status_tables(nodes, apps):
            out.print(table)
        out.print(
            "[green]everything is as the inventory says[/]" if healthy else "[bold red]degraded[/]"
        )
    return exit_codes.OK if healthy else exit_codes.FAILED
