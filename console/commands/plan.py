"""`mlops-tui plan`: what apply would change, per host. Exit 0 none, 4 changes, 1 error."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from cluster.models.store import ModelStore
from cluster.provision.bundle import build_bundle, temp_workdir
from cluster.provision.operations import make_plans, plan_event
from cluster.transport import Connections
from console import exit_codes
from console.commands.provision_common import add_target_args
from console.inventory_path import open_inventory
from console.render.provision import json_line, print_plan


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="compare the inventory with what hosts run; list the changes")
    add_target_args(p)
    p.set_defaults(run=run)


async def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    inventory = open_inventory(args.inventory, args.target)
    for warning in inventory.warnings:
        err.print(f"[yellow]warning:[/] {warning}")
    store = ModelStore(inventory.settings.model_store)
    with temp_workdir() as tmp:
        bundle = build_bundle(Path(tmp))
        async with Connections(inventory) as connections:
            with err.status("observing hosts", spinner="dots"):
                plans = await make_plans(connections, store, args.target, bundle.sha256)
    event = plan_event(plans)
    if args.json:
        json_line(event)
    else:
        print_plan(out, event)
    if event.errors or event.unreachable:
        return exit_codes.FAILED
    return exit_codes.CHANGES if event.actions else exit_codes.OK
