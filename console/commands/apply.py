"""`mlops-tui apply`: make the hosts run what the inventory says, step by step."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from cluster.models.store import ModelStore
from cluster.provision.bundle import build_bundle, temp_workdir
from cluster.provision.events import RunFinished, StepDone
from cluster.provision.operations import apply_plans, has_changes, make_plans, plan_event
from cluster.transport import Connections
from console import exit_codes
from console.commands.provision_common import add_target_args, confirmed
from console.inventory_path import open_inventory
from console.render.provision import json_line, print_plan, print_step


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "apply", help="execute the plan: ship code and models, start Ray, deploy Serve"
    )
    add_target_args(p, confirm=True)
    p.set_defaults(run=run)


async def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    inventory = open_inventory(args.inventory, args.target)
    for warning in inventory.warnings:
        err.print(f"[yellow]warning:[/] {warning}")
    store = ModelStore(inventory.settings.model_store)
    done: list[str] = []
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
            if not has_changes(plans):
                return exit_codes.OK
            if not event.actions and (event.errors or event.unreachable):
                return exit_codes.FAILED
            if not confirmed(args, err, "Apply these changes?"):
                err.print("nothing changed")
                return exit_codes.OK
            finished: RunFinished | None = None
            try:
                async for step in apply_plans(connections, plans, bundle):
                    if isinstance(step, StepDone):
                        done.append(f"{step.host}: {step.step} {step.detail}")
                    if isinstance(step, RunFinished):
                        finished = step
                    if args.json:
                        json_line(step)
                    else:
                        print_step(out, step)
            except BaseException:
                # Ctrl-C or a lost connection: every step is atomic, so say which ones landed.
                err.print(
                    "[bold red]apply interrupted.[/] Steps completed before the stop (the rest kept their old state):"
                )
                for line in done or ["(none)"]:
                    err.print(f"  {line}", markup=False)
                err.print("Run apply again to converge.")
                raise
    if finished is None or finished.failed_hosts:
        return exit_codes.FAILED
    return exit_codes.OK
