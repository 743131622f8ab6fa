"""`mlops-tui destroy`: remove the targets' Serve apps and stop the Ray processes we started."""

from __future__ import annotations

import argparse

from rich.console import Console

from cluster.provision.events import RunFinished
from cluster.provision.operations import destroy
from cluster.transport import Connections
from console import exit_codes
from console.commands.provision_common import add_target_args, confirmed
from console.inventory_path import open_inventory
from console.render.provision import json_line, print_step


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "destroy", help="delete the Serve apps and stop our Ray processes on the targets"
    )
    add_target_args(p, confirm=True)
    p.set_defaults(run=run)


async def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    inventory = open_inventory(args.inventory, args.target, err=err)
    targets = ", ".join(args.target or inventory.targets)
    if not confirmed(args, err, f"Stop Serve and Ray on {targets}?"):
        err.print("nothing changed")
        return exit_codes.OK
    finished: RunFinished | None = None
    async with Connections(inventory) as connections:
        async for event in destroy(connections, args.target, force=args.force):
            finished = event if isinstance(event, RunFinished) else finished
            if args.json:
                json_line(event)
            else:
                print_step(out, event)
    return (
        exit_codes.OK if finished is not None and not finished.failed_hosts else exit_codes.FAILED
    )
