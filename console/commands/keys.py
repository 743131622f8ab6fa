"""`mlops-tui keys APP --out FILE`: hand an app's key to its clients without printing it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.console import Console
from rich.text import Text

from cluster.errors import UsageError
from cluster.keys import cluster_app_key
from cluster.provision.topology import clusters_of
from cluster.transport import Connections
from console import exit_codes
from console.inventory_path import open_inventory


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "keys",
        help="write an app's current key to a file (mode 600) for its clients; never printed",
        description="Labels (/feedback), the monitor and preview routes need the app's key, "
        "sent as 'Authorization: Bearer KEY' (and /predict too with auth: {predict: true}). "
        "A key is made by the first apply unless the inventory names one (key: ${ENV} under "
        "the app's auth:); `apply --rotate-key APP` replaces it, the old one working for auth.grace.",
    )
    p.add_argument("app")
    p.add_argument("--out", required=True, metavar="FILE", help="where to write the key")
    p.add_argument(
        "--cluster",
        metavar="ID",
        help="which cluster's key, when the app runs on several (each edge host has its own "
        "unless the inventory names the key)",
    )
    p.add_argument("-i", "--inventory")
    p.set_defaults(run=run)


async def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    inventory = open_inventory(args.inventory, err=err)
    if args.app not in inventory.apps:
        raise UsageError(f"no app named '{args.app}' in {inventory.path}")
    app = inventory.apps[args.app]
    clusters = clusters_of(inventory, inventory.targets[app.target])
    ids = [c.id for c in clusters]
    if args.cluster is None and len(clusters) > 1:
        raise UsageError(
            f"{app.name} runs on {len(clusters)} clusters; name one with --cluster "
            f"({', '.join(ids[:5])}{', ...' if len(ids) > 5 else ''})"
        )
    if args.cluster is not None and args.cluster not in ids:
        raise UsageError(f"{app.name} does not run on cluster '{args.cluster}'")
    cluster = next(c for c in clusters if args.cluster in (None, c.id))
    async with Connections(inventory) as connections:
        key = await cluster_app_key(connections, cluster, app.name)
    path = Path(args.out)
    # Born mode 600: never readable by others, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(key + "\n")
    out.print(Text(f"the key of {app.name} on {cluster.id} is in {path} (mode 600)"))
    return exit_codes.OK
