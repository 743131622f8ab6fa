"""`-v` and `--log-file PATH`: what each operation did on which host, with timings, through the
standard `logging` module, so a failed CI run can be read from its log alone.

The operations layer logs under `mlops_tui.*` (commands run on hosts, apply steps, every line
of the rollout history, leases). Nothing secret is ever logged there: secrets travel on stdin,
never on a command line, and stdin is not logged.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from cluster.errors import UsageError

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def add_logging_args(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """The options, on the main parser (dests `global_*`) and on every subcommand."""
    parser.add_argument(
        "-v",
        "--verbose",
        dest=f"{prefix}verbose",
        action="count",
        default=0,
        help="say what each operation does on which host on stderr (-vv: every command run)",
    )
    parser.add_argument(
        "--log-file",
        dest=f"{prefix}log_file",
        metavar="PATH",
        help="append everything -vv says, with timestamps, to PATH",
    )


def configure(verbose: int, log_file: str | None) -> None:
    """Route the operations' log records to stderr (`verbose`) and/or a file."""
    logger = logging.getLogger("mlops_tui")
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.DEBUG if (verbose > 1 or log_file) else logging.INFO)
    formatter = logging.Formatter(FORMAT)
    if verbose:
        stream = logging.StreamHandler()
        stream.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
        stream.setFormatter(formatter)
        logger.addHandler(stream)
    if log_file:
        try:
            handler = logging.FileHandler(Path(log_file), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--log-file {log_file}: {exc.strerror or exc}") from None
        handler.setLevel(logging.DEBUG)
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
