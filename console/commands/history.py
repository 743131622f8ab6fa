"""`mlops-tui history [APP]`: the rollout history kept next to the inventory (append-only)."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text

from cluster.rollout.history import history_entries, history_path, history_problems
from console import exit_codes
from console.inventory_path import open_inventory


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("history", help="every swap, step, gate value and outcome, oldest first")
    p.add_argument("app", nargs="?")
    p.add_argument("-i", "--inventory")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run)


async def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    inventory = open_inventory(args.inventory)
    path = history_path(inventory.path)
    entries = history_entries(path, args.app)
    for problem in history_problems(path):
        err.print(Text(f"warning: {problem}"))
    if args.json:
        sys.stdout.write(json.dumps([e.to_dict() for e in entries], indent=2) + "\n")
        return exit_codes.OK
    table = Table(title=f"History ({path})", title_justify="left")
    for column in ("at", "who", "app", "kind", "what"):
        table.add_column(column)
    for e in entries:
        # Plain text: nothing read from the file is markup.
        table.add_row(*(Text(c) for c in (e.at, e.who, e.app, e.kind, e.what)))
    out.print(table)
    return exit_codes.OK
