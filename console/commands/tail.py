"""`mlops-tui tail APP`: live latency percentiles, balance and accuracy of an app's versions."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.live import Live

from cluster.errors import UsageError
from cluster.provision.topology import clusters_of
from cluster.telemetry.collector import Collector, TelemetryFrame
from cluster.transport import Connections
from console import exit_codes
from console.durations import duration
from console.inventory_path import open_inventory
from console.render.provision import json_line
from console.render.telemetry import frame_view


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tail", help="live per-version requests/s, p50/p95/p99, errors, balance, accuracy"
    )
    p.add_argument("app", help="app name from the inventory")
    p.add_argument(
        "-i", "--inventory", help="inventory file (default: $MLOPS_INVENTORY or ./inventory.yaml)"
    )
    p.add_argument(
        "--duration", type=duration, default=30.0, help="how long to watch (default 30s)"
    )
    p.add_argument("--interval", type=duration, default=1.0, help="scrape interval (default 1s)")
    p.add_argument(
        "--window",
        type=duration,
        default=10.0,
        help="sliding window for rates and percentiles (default 10s)",
    )
    p.add_argument(
        "--json", action="store_true", help="JSON lines, one per interval (also without a terminal)"
    )
    p.set_defaults(run=run)


async def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    inventory = open_inventory(args.inventory, err=err)
    if args.app not in inventory.apps:
        known = ", ".join(inventory.apps) or "none defined"
        raise UsageError(f"no app named '{args.app}' in {inventory.path} (apps: {known})")
    app = inventory.apps[args.app]
    clusters = clusters_of(inventory, inventory.targets[app.target])
    as_json = args.json or not sys.stdout.isatty()
    last: TelemetryFrame | None = None
    async with Connections(inventory) as connections:
        collector = Collector(
            connections, app, clusters, interval=args.interval, window_s=args.window
        )
        if as_json:
            async for frame in collector.frames(args.duration):
                last = frame
                json_line(frame)
        else:
            with Live(console=out, refresh_per_second=4) as live:
                async for frame in collector.frames(args.duration):
                    last = frame
                    live.update(frame_view(frame))
    if last is None or not any(state == "ok" for state in last.nodes.values()):
        return exit_codes.FAILED  # no node answered
    if not last.versions:
        err.print(
            f"[red]error:[/] {app.name} is not running on {app.target} (no version reports metrics)"
        )
        return exit_codes.FAILED
    return exit_codes.OK
