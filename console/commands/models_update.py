"""`mlops-tui models update APP`: a new version from the labels production fed back, judged
against the live one, and with --swap, swapped in behind the app's gates.

Exit codes: 0 stored (and, with --swap, promoted), 5 no candidate good enough (nothing
stored), 3 the swap's gate failed and it was rolled back, 1 error, 2 invalid input.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from cluster.errors import UsageError
from console import exit_codes
from console.durations import duration, duration_or_zero
from console.inventory_path import open_inventory
from console.render.provision import json_line


def add_parser(msub: Any) -> None:
    up = msub.add_parser(
        "update",
        help="train a new version from the app's labelled production records (incremental or "
        "batch), import it only if it is better, optionally swap to it",
    )
    up.add_argument("app")
    up.add_argument("-i", "--inventory", dest="update_inventory", help="inventory")
    up.add_argument(
        "--method",
        choices=("incremental", "batch"),
        default="incremental",
        help="incremental: partial_fit on a copy of the live estimator; batch: refit (default incremental)",
    )
    up.add_argument(
        "--since",
        type=duration,
        default=86_400.0,
        help="records labelled in this window (default 24h)",
    )
    up.add_argument(
        "--min-records",
        type=_positive,
        default=200,
        help="fewer labelled records: no update (default 200)",
    )
    up.add_argument(
        "--margin", type=_margin, default=0.01,
        help="how much worse than the live version on the stored holdout it may be (default 0.01)",
    )  # fmt: skip
    up.add_argument(
        "--from", dest="parent", metavar="VERSION",
        help="update from this stored version instead of the one the app serves (the app's "
        "cluster need not answer; it is judged against that version)",
    )  # fmt: skip
    up.add_argument("--swap", action="store_true", help="then swap to it behind the app's gates")
    up.add_argument(
        "--bake",
        type=duration_or_zero,
        default=30.0,
        help="with --swap: gate evaluation time after the shift (default 30s, as swap)",
    )
    up.add_argument(
        "--retire-after", type=duration_or_zero, default=30.0,
        help="with --swap: the old replicas stay idle this long after promotion (default 30s)",
    )  # fmt: skip
    up.add_argument("--yes", action="store_true")
    up.add_argument("--json", action="store_true")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a positive whole number")
    return int(text)


def _margin(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number like 0.01") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"--margin {text}: give a share between 0 and 1")
    return value


async def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    from cluster.models.store import ModelStore, check_name
    from cluster.rollout.events import SwapOptions
    from cluster.transport import Connections
    from cluster.updates.train import Method
    from cluster.updates.update import UpdateFinished, UpdateOptions, update_model
    from console.commands.provision_common import confirmed
    from console.commands.swap import run_swap
    from console.render.update import print_update_event

    inventory = open_inventory(args.update_inventory or args.inventory, err=err)
    if args.app not in inventory.apps:
        raise UsageError(
            f"no app named '{args.app}' in {inventory.path} (apps: {', '.join(inventory.apps) or 'none'})"
        )
    app = inventory.apps[args.app]
    store = ModelStore(inventory.settings.model_store)
    if args.parent is not None:
        check_name(args.parent, "version")
    options = UpdateOptions(
        Method(args.method), args.since, args.min_records, args.margin, parent=args.parent
    )
    finished: UpdateFinished | None = None
    async with Connections(inventory) as connections:
        async for event in update_model(connections, store, app, options):
            if isinstance(event, UpdateFinished):
                finished = event
            if args.json:
                json_line(event)
            else:
                print_update_event(out, event)
        if finished is None or finished.outcome != "stored" or not args.swap:
            if finished is not None and finished.outcome == "not_better":
                return exit_codes.NOT_BETTER
            return exit_codes.OK if finished is not None else exit_codes.FAILED
        assert finished.version is not None
        what = f"Swap {app.name} to version {finished.version} (its gates judge it)?"
        if not confirmed(args, err, what):
            return exit_codes.OK
        swap_options = SwapOptions(
            to_version=finished.version, gates=app.gates, bake_s=args.bake,
            retire_after_s=args.retire_after,
        )  # fmt: skip
        return await run_swap(connections, store, app, swap_options, args.json, out)
