"""`mlops-tui rollback|promote|abort APP`: one-step traffic changes, recorded in the history."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.text import Text

from cluster.errors import UsageError
from cluster.models.store import ModelStore
from cluster.rollout.events import SwapStep
from cluster.rollout.history import History, history_path
from cluster.rollout.manage import change
from cluster.transport import Connections
from console import exit_codes
from console.inventory_path import open_inventory
from console.render.provision import json_line

FORCE_HELP = (
    "take over another operator's lease on the app (only when that operator is known to be "
    "gone; a lease expires by itself 5 minutes after its holder stops renewing it)"
)
# argparse formats help with %: a literal percent is %%.
HELP = {
    "rollback": "send 100%% of traffic back to the other deployed version",
    "promote": "give 100%% to the canary (if any) and retire the other versions",
    "abort": "stop a canary or shadow phase; the live version keeps 100%%",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    for action, text in HELP.items():
        p = sub.add_parser(action, help=text)
        p.add_argument("app")
        p.add_argument("-i", "--inventory")
        if action == "rollback":
            p.add_argument(
                "--to", metavar="VERSION", help="when more than one other version is deployed"
            )
        p.add_argument("--force", action="store_true", help=FORCE_HELP)
        p.add_argument("--json", action="store_true")
        p.set_defaults(run=run, action=action)


async def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    inventory = open_inventory(args.inventory, err=err)
    if args.app not in inventory.apps:
        raise UsageError(f"no app named '{args.app}' in {inventory.path}")
    history = History(history_path(inventory.path))
    async with Connections(inventory) as connections:
        store = ModelStore(inventory.settings.model_store)
        app = inventory.apps[args.app]
        async for event in change(
            connections, app, args.action, history, getattr(args, "to", None), store,
            force=args.force,
        ):  # fmt: skip
            if args.json:
                json_line(event)
            elif isinstance(event, SwapStep):
                took = event.data.get("seconds")
                timing = f" ({took * 1000:.0f} ms)" if took is not None else ""
                out.print(Text(f"{event.cluster}: {event.detail}{timing}"))
    return exit_codes.OK
