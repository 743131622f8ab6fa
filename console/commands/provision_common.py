"""What plan, apply, destroy and status share: arguments, the model store, confirmation."""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from rich.console import Console
from rich.prompt import Confirm

from cluster.errors import UsageError
from cluster.models.store import ModelStore
from cluster.provision.operations import Planned
from cluster.provision.operations import planned as plan_run
from console.inventory_path import open_inventory
from console.render.provision import json_line, print_plan


def add_target_args(p: argparse.ArgumentParser, *, confirm: bool = False) -> None:
    p.add_argument(
        "-i", "--inventory", help="inventory file (default: $MLOPS_INVENTORY or ./inventory.yaml)"
    )
    p.add_argument("-t", "--target", action="append", help="only this target (repeatable)")
    p.add_argument("--json", action="store_true", help="JSON lines, one per event")
    if confirm:
        p.add_argument(
            "--yes", action="store_true", help="do it without asking (required without a terminal)"
        )
        p.add_argument(
            "--force",
            action="store_true",
            help="take over another operator's lease on the apps (only when that operator is "
            "known to be gone; a lease expires by itself 5 minutes after its last renewal)",
        )


def confirmed(args: argparse.Namespace, err: Console, question: str) -> bool:
    """--yes, or an explicit yes at a terminal; without a terminal --yes is required."""
    if args.yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(
            f"{question.rstrip('?')}: refusing without --yes when there is no terminal to ask"
        )
    return Confirm.ask(question, console=err, default=False)


@asynccontextmanager
async def planned(args: argparse.Namespace, out: Console, err: Console) -> AsyncIterator[Planned]:
    """Load the inventory, observe the hosts, make and print the plan; connections stay open."""
    inventory = open_inventory(args.inventory, args.target, err=err)
    store = ModelStore(inventory.settings.model_store)
    status = err.status("observing hosts", spinner="dots")
    status.start()
    try:
        rotate = frozenset(getattr(args, "rotate_key", None) or ())
        unknown = sorted(rotate - set(inventory.apps))
        if unknown:
            raise UsageError(
                f"--rotate-key: no app named {', '.join(unknown)} in {args.inventory}; "
                f"apps: {', '.join(sorted(inventory.apps)) or '(none)'}"
            )
        async with plan_run(inventory, store, args.target, rotate) as run:
            status.stop()
            if args.json:
                json_line(run.event)
            else:
                print_plan(out, run.event)
            yield run
    finally:
        status.stop()
