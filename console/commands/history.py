"""`mlops-tui history [APP]`: the rollout history kept next to the inventory (append-only)."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text

from cluster.rollout.history import history_path, read_history
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
    entries = read_history(history_path(inventory.path), args.app)
    if args.json:
        sys.stdout.write(json.dumps(entries, indent=2) + "\n")
        return exit_codes.OK
    table = Table(title=f"History ({history_path(inventory.path)})", title_justify="left")
    for column in ("at", "who", "app", "kind", "what"):
        table.add_column(column)
    for e in entries:
        what = e.get("detail") or e.get("outcome") or e.get("to") or ""
        if e.get("kind") == "gates":
            what = ", ".join(
                f"{r['gate']}={r['value']} {'ok' if r['passed'] else 'FAIL'}"
                for r in e.get("results", [])
            )
        cells = (e.get("at", ""), e.get("who", ""), e.get("app", ""), e.get("kind", ""), what)
        table.add_row(*(Text(str(c)) for c in cells))  # plain text: no markup from the file
    out.print(table)
    return exit_codes.OK
