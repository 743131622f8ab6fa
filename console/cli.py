"""The `mlops-tui` command: subcommands for CI, the Textual app when run bare on a terminal."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.text import Text

from cluster.errors import InventoryError, MlopsError, UsageError
from console import exit_codes
from console.commands import (
    apply,
    check,
    demo,
    destroy,
    history,
    models,
    plan,
    status,
    swap,
    tail,
    traffic,
    tui,
)

COMMANDS = (
    check, models, plan, apply, status, destroy, tail, swap, traffic, history, tui, demo
)  # fmt: skip


class _Parser(argparse.ArgumentParser):
    """argparse, but bad arguments exit 2 with one clear line instead of a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(exit_codes.INVALID, f"{self.prog}: error: {message}\n(see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mlops-tui",
        description="Terminal ops console for ML model deployments on Ray Serve. "
        "Run bare (or with only -i FILE) on a terminal to open the interactive console.",
    )
    # Global options, accepted before the subcommand too. Their own dests: a subcommand's
    # `-i` default (None) would otherwise overwrite the global value (see `_merge_globals`).
    parser.add_argument(
        "-i",
        "--inventory",
        dest="global_inventory",
        metavar="INVENTORY",
        help="inventory file (default: $MLOPS_INVENTORY or ./inventory.yaml)",
    )
    parser.add_argument(
        "--read-only",
        dest="global_read_only",
        action="store_true",
        help="the console refuses every action that changes anything",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def _merge_globals(args: argparse.Namespace) -> None:
    """`mlops-tui -i FILE check` means `mlops-tui check -i FILE`; both at once must agree."""
    given = args.global_inventory
    if given is not None and hasattr(args, "inventory"):
        if args.inventory is not None and args.inventory != given:
            raise UsageError(
                f"two inventories given: -i {given} before the command and -i {args.inventory} after it"
            )
        args.inventory = given
    elif not hasattr(args, "inventory"):
        args.inventory = given
    args.read_only = getattr(args, "read_only", False) or args.global_read_only


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    raw = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(raw)
    except SystemExit as exc:  # --help (0) or bad arguments (2): already explained on stderr
        return int(exc.code or 0)
    err = Console(stderr=True, soft_wrap=True)  # error lines stay whole for grep and editors
    if args.command is None:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            parser.print_help(sys.stderr)
            err.print("\nThe interactive console needs a terminal; name a COMMAND to run headless.")
            return exit_codes.INVALID
        args = parser.parse_args([*raw, "tui"])  # bare `mlops-tui [-i FILE]` opens the console
    # Logs and pipes are not 80 columns wide; don't squeeze tables meant for them.
    out = Console() if sys.stdout.isatty() else Console(width=160)
    try:
        _merge_globals(args)
        code: int = asyncio.run(args.run(args, out, err))
    except InventoryError as exc:
        err.print(
            f"[red]error:[/] invalid inventory ({len(exc.problems)} problem(s)):", highlight=False
        )
        for problem in exc.problems:
            err.print(f"  {problem}", highlight=False, markup=False)
        return exit_codes.INVALID
    except UsageError as exc:
        err.print(Text.assemble(("error: ", "red"), str(exc)), highlight=False)
        return exit_codes.INVALID
    except MlopsError as exc:
        err.print(Text.assemble(("error: ", "red"), str(exc)), highlight=False)
        return exit_codes.FAILED
    except KeyboardInterrupt:
        err.print("interrupted")
        return exit_codes.INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
