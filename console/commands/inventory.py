"""`mlops-tui inventory show`: the hosts as resolved (Ansible variables included)."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console

from console import exit_codes
from console.inventory_path import open_inventory
from console.render.inventory import inventory_document, inventory_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inventory", help="show the hosts as resolved from the inventory")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser(
        "show",
        help="every host's address, port, user, key, jump host, python and groups",
        description="Each host with its settings resolved: defaults, hosts:, and Ansible "
        "inventories with their group and host variables, as `ansible-inventory --list` "
        "would give them. Reads the files only; connects to nothing.",
    )
    show.add_argument(
        "-i", "--inventory", help="inventory file (default: $MLOPS_INVENTORY or ./inventory.yaml)"
    )
    show.add_argument("-t", "--target", action="append", help="only this target's hosts")
    show.add_argument("--json", action="store_true", help="print one JSON document")
    show.set_defaults(run=run)


async def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    inventory = open_inventory(args.inventory, args.target, err=err)
    hosts = inventory.hosts_of(args.target)
    if args.json:
        sys.stdout.write(json.dumps(inventory_document(inventory, hosts), indent=2) + "\n")
    else:
        out.print(inventory_table(inventory, hosts))
        out.print(f"{len(hosts)} host(s) from {inventory.path}")
    return exit_codes.OK
