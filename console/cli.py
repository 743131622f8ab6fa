"""The `mlops-tui` command: subcommands for CI, the Textual app when run bare on a terminal."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.text import Text

from cluster.errors import InventoryError, MlopsError, UsageError
from console import exit_codes
from console.logfile import add_logging_args
from console.logfile import configure as configure_logging
from console.signals import Stopped, cancelled_by_signals

# Modules under console.commands, imported when the parser is built: the console's own start
# (`mlops-tui [-i FILE]` on a terminal) imports only `tui`.
COMMANDS = (
    "check", "models", "plan", "apply", "status", "destroy", "tail", "swap", "traffic",
    "history", "keys", "inventory", "tui", "demo", "tls",
)  # fmt: skip


class _Parser(argparse.ArgumentParser):
    """argparse, but bad arguments exit 2 with one clear line instead of a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(exit_codes.INVALID, f"{self.prog}: error: {message}\n(see {self.prog} --help)\n")


def _globals(parser: argparse.ArgumentParser) -> None:
    # Accepted before the subcommand too. Their own dests: a subcommand's `-i` default (None)
    # would otherwise overwrite the global value (see `_merge_globals`).
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
    add_logging_args(parser, prefix="global_")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mlops-tui",
        description="Terminal ops console for ML model deployments on Ray Serve. "
        "Run bare (or with only -i FILE) on a terminal to open the interactive console.",
    )
    _globals(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"console.commands.{name}").add_parser(sub)
    for command in set(sub.choices.values()):
        add_logging_args(command)
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
    args.verbose = getattr(args, "verbose", 0) + args.global_verbose
    args.log_file = getattr(args, "log_file", None) or args.global_log_file


def _console_only(raw: list[str]) -> argparse.Namespace | None:
    """Nothing but global options, on a terminal: the console, without building (importing)
    every subcommand."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()) or any(a in ("-h", "--help") for a in raw):
        return None
    parser = _Parser(prog="mlops-tui", add_help=False)
    _globals(parser)
    try:
        args, rest = parser.parse_known_args(raw)
    except SystemExit:  # e.g. -i without a file: the full parser says so
        return None
    if rest:
        return None
    from console.commands import tui

    return argparse.Namespace(
        command="tui", inventory=None, read_only=False, run=tui.run, **vars(args)
    )


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    err = Console(stderr=True, soft_wrap=True)  # error lines stay whole for grep and editors
    args = _console_only(raw)
    if args is None:
        parser = build_parser()
        try:
            args = parser.parse_args(raw)
        except SystemExit as exc:  # --help (0) or bad arguments (2): already explained on stderr
            return int(exc.code or 0)
        if args.command is None:
            parser.print_help(sys.stderr)
            err.print("\nThe interactive console needs a terminal; name a COMMAND to run headless.")
            return exit_codes.INVALID
    # Logs and pipes are not 80 columns wide; don't squeeze tables meant for them.
    out = Console() if sys.stdout.isatty() else Console(width=160)
    try:
        _merge_globals(args)
        configure_logging(args.verbose, args.log_file)
        work = args.run(args, out, err)
        # The console handles its own terminal; a headless command stops on SIGTERM or
        # SIGHUP as on Ctrl-C (a swap puts the old version back first).
        code: int = asyncio.run(work if args.command == "tui" else cancelled_by_signals(work))
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
    except Stopped as exc:
        err.print(f"interrupted ({exc.name})")
        return exc.exit_code
    return code


if __name__ == "__main__":
    sys.exit(main())
