"""`mlops-tui plan`: what apply would change, per host. Exit 0 none, 4 changes, 1 error."""

from __future__ import annotations

import argparse

from rich.console import Console

from console import exit_codes
from console.commands.provision_common import add_target_args, planned


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="compare the inventory with what hosts run; list the changes")
    add_target_args(p)
    p.set_defaults(run=run)


async def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    async with planned(args, out, err) as run_:
        event = run_.event
    if event.errors or event.unreachable:
        return exit_codes.FAILED
    return exit_codes.CHANGES if event.actions else exit_codes.OK
