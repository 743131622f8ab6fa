"""`mlops-tui apply`: make the hosts run what the inventory says, step by step."""

from __future__ import annotations

import argparse

from rich.console import Console

from cluster.provision.events import RunFinished, StepDone, StepFailed, StepStarted
from cluster.provision.operations import apply_plans, has_changes
from console import exit_codes
from console.commands.provision_common import add_target_args, confirmed, planned
from console.render.provision import json_line, print_step


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "apply", help="execute the plan: ship code and models, start Ray, deploy Serve"
    )
    add_target_args(p, confirm=True)
    p.add_argument(
        "--rotate-key",
        metavar="APP",
        action="append",
        help="replace APP's key with a new one; the old key keeps working for the app's "
        "auth.grace (default 1h). Repeat for several apps",
    )
    p.set_defaults(run=run)


async def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    done: list[str] = []
    running: dict[tuple[str, str], str] = {}  # started, not yet done or failed
    finished: RunFinished | None = None
    async with planned(args, out, err) as run_:
        if not has_changes(run_.plans):
            return exit_codes.OK
        if not run_.event.actions and (run_.event.errors or run_.event.unreachable):
            return exit_codes.FAILED
        if not confirmed(args, err, "Apply these changes?"):
            err.print("nothing changed")
            return exit_codes.OK
        try:
            async for step in apply_plans(
                run_.connections, run_.plans, run_.bundle, force=args.force
            ):
                if isinstance(step, StepStarted):
                    running[(step.host, step.step)] = f"{step.host}: {step.step} {step.detail}"
                if isinstance(step, StepDone | StepFailed):
                    running.pop((step.host, step.step), None)
                if isinstance(step, StepDone):
                    done.append(f"{step.host}: {step.step} {step.detail}")
                if isinstance(step, RunFinished):
                    finished = step
                if args.json:
                    json_line(step)
                else:
                    print_step(out, step)
        except BaseException:
            # Ctrl-C or a lost connection: say which steps landed and which were cut short.
            _report_interrupted(args, err, done, list(running.values()))
            raise
    if finished is None or finished.failed_hosts:
        return exit_codes.FAILED
    return exit_codes.OK


def _report_interrupted(
    args: argparse.Namespace, err: Console, done: list[str], cut: list[str]
) -> None:
    """Steps that landed, steps cut short (their host may be in either state), the rest untouched."""
    if args.json:
        json_line({"event": "interrupted", "done": done, "cut_short": cut})
    err.print("[bold red]apply interrupted.[/] Steps completed before the stop:")
    for line in done or ["(none)"]:
        err.print(f"  {line}", markup=False)
    if cut:
        err.print(
            "Steps cut short (each is all-or-nothing on its host, so it either landed or not; "
            "a restart-ray may have left Ray stopped):"
        )
        for line in cut:
            err.print(f"  {line}", markup=False)
    err.print("Every other step kept its old state. Run apply again to converge.")
