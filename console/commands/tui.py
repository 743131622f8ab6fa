"""`mlops-tui tui`: the interactive console (also what a bare `mlops-tui` opens on a terminal)."""

from __future__ import annotations

import argparse

from rich.console import Console

from console import exit_codes
from console.inventory_path import open_inventory


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tui", help="open the interactive console")
    p.add_argument(
        "-i", "--inventory", help="inventory file (default: $MLOPS_INVENTORY or ./inventory.yaml)"
    )
    p.add_argument(
        "--read-only",
        action="store_true",
        help="refuse every action that changes anything (also per target: read_only: true)",
    )
    p.set_defaults(run=run)


async def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    inventory = open_inventory(args.inventory)
    from console.tui.app import MlopsApp  # Textual loads only for the interactive console

    await MlopsApp(inventory, read_only=args.read_only).run_async()
    return exit_codes.OK
