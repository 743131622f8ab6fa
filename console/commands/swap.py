"""`mlops-tui swap APP --to VERSION`: blue/green or canary behind gates, with automatic rollback.

Exit codes: 0 promoted, 3 a gate failed and its hosts went back (all of them, or on an edge
fleet within max_failures only those), 1 error, 2 invalid input, 130 Ctrl-C.
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.text import Text

from cluster.errors import UsageError
from cluster.gates import GateSyntaxError, parse_gate
from cluster.inventory import App
from cluster.models.store import ModelStore
from cluster.rollout.events import (
    BakeProgress,
    GatesChecked,
    Strategy,
    SwapFinished,
    SwapOptions,
    SwapOutcome,
    SwapStep,
    parse_steps,
)
from cluster.rollout.history import History, history_path
from cluster.rollout.swap import swap
from cluster.transport import Connections
from console import exit_codes
from console.commands.provision_common import confirmed
from console.commands.traffic import FORCE_HELP
from console.durations import duration_or_zero
from console.inventory_path import open_inventory
from console.render.provision import json_line


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "swap", help="swap an app to another model version behind gates (bluegreen or canary)"
    )
    p.add_argument("app")
    p.add_argument("--to", required=True, metavar="VERSION", help="model version to swap to")
    p.add_argument("-i", "--inventory")
    p.add_argument(
        "--strategy", choices=[s.value for s in Strategy], default=Strategy.BLUEGREEN.value
    )
    p.add_argument(
        "--steps", default="10,50,100", help="canary traffic shares in percent (default 10,50,100)"
    )
    p.add_argument(
        "--bake",
        type=duration_or_zero,
        default=30.0,
        help="gate evaluation time after each shift (default 30s)",
    )
    p.add_argument(
        "--shadow",
        type=duration_or_zero,
        default=0.0,
        help="mirror live traffic to the new version first",
    )
    p.add_argument(
        "--gate",
        action="append",
        default=None,
        help="e.g. accuracy>=0.9, p95_ms<=50, accuracy>=blue-0.02@500 (@N: live labels the "
        "new version needs first, default 200); without any, the app's gates, else a default "
        "holdout gate (accuracy>=blue-0.02, or mse<=blue*1.1 for regressors)",
    )
    p.add_argument(
        "--no-gates",
        action="store_true",
        help="no gate at all, not even the default one (recorded in the history)",
    )
    p.add_argument(
        "--retire-after",
        type=duration_or_zero,
        default=30.0,
        help="keep the old replicas (idle) this long after promotion, so a rollback is one "
        "route flip (default 30s)",
    )
    p.add_argument(
        "--no-auto-rollback",
        action="store_true",
        help="on a failed gate, stop and leave it to rollback/promote",
    )
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--yes", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run)


async def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    inventory = open_inventory(args.inventory, err=err)
    if args.app not in inventory.apps:
        raise UsageError(
            f"no app named '{args.app}' in {inventory.path} (apps: {', '.join(inventory.apps) or 'none'})"
        )
    app = inventory.apps[args.app]
    if args.no_gates and args.gate:
        raise UsageError("--no-gates and --gate contradict each other: give one of them")
    try:
        gates = tuple(parse_gate(g) for g in args.gate) if args.gate is not None else app.gates
    except GateSyntaxError as exc:
        raise UsageError(str(exc)) from None
    if args.no_gates:
        gates = ()
    options = SwapOptions(
        to_version=args.to, strategy=Strategy(args.strategy), steps=parse_steps(args.steps), bake_s=args.bake,
        shadow_s=args.shadow, gates=gates, no_gates=args.no_gates, force=args.force, auto_rollback=not args.no_auto_rollback,
        retire_after_s=args.retire_after,
    )  # fmt: skip
    store = ModelStore(inventory.settings.model_store)
    store.get(app.model, args.to)  # a missing or tampered version is refused before anything runs
    named = ", ".join(g.text for g in gates) or (
        "none" if args.no_gates else "the default holdout gate"
    )
    what = f"Swap {app.name} to version {args.to} ({args.strategy}, gates: {named})?"
    if not confirmed(args, err, what):
        return exit_codes.OK
    async with Connections(inventory) as connections:
        return await run_swap(connections, store, app, options, args.json, out)


async def run_swap(
    connections: Connections,
    store: ModelStore,
    app: App,
    options: SwapOptions,
    as_json: bool,
    out: Console,
) -> int:
    """The swap, its events printed (or as JSON lines), and its exit code: 0 promoted, 3 a
    gate failed and it was rolled back, 1 anything else."""
    history = History(history_path(connections.inventory.path))
    finished: SwapFinished | None = None
    async for event in swap(connections, store, app, options, history):
        finished = event if isinstance(event, SwapFinished) else finished
        if as_json:
            json_line(event)
        else:
            print_event(out, event)
    if finished is None:
        return exit_codes.FAILED
    if finished.outcome == SwapOutcome.PROMOTED:
        return exit_codes.OK
    return exit_codes.GATE_FAILED if finished.outcome.gate_failed else exit_codes.FAILED


def print_event(out: Console, event: object) -> None:
    """One swap event as a line (or nothing: bake progress is for --json and the console)."""
    if isinstance(event, SwapStep):
        out.print(
            Text.assemble(
                ("  ✓ ", "green"),
                (f"{event.cluster:<14}", "bold"),
                f"{event.phase:<9} {event.detail}",
            )
        )
    elif isinstance(event, GatesChecked):
        for r in event.results:
            mark = ("  ✓ ", "green") if r.passed else ("  ✗ ", "bold red")
            out.print(
                Text.assemble(
                    mark,
                    (f"{event.cluster:<14}", "bold"),
                    f"gate {r.gate:<22} {event.phase}: {r.reason}",
                )
            )
    elif isinstance(event, BakeProgress):
        return  # every interval: --json has them; the lines above say how each phase ended
    elif isinstance(event, SwapFinished):
        style = "green" if event.outcome == SwapOutcome.PROMOTED else "bold red"
        out.print(Text(f"{event.outcome}: {event.detail}", style=style))
        for name, seconds in event.timings.items():
            out.print(f"  {name}: {seconds * 1000:.0f} ms")
