"""Every `--help` answers, and global options work before the subcommand."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = str(ROOT / "inventory.example.yaml")


def command_paths(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    """Every command path: (), ("check",), ("models", "import"), ..."""
    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from command_paths(sub, (*prefix, name))


ALL = list(command_paths(build_parser()))


def test_the_walk_finds_every_command() -> None:
    names = {p[0] for p in ALL if p}
    assert {"check", "plan", "apply", "destroy", "status", "tail", "swap", "rollback"} <= names
    assert ("models", "import") in ALL


@pytest.mark.parametrize("path", ALL, ids=lambda p: " ".join(p) or "top")
def test_every_help_exits_0_without_a_traceback(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*path, "--help"]) == 0
    out, err = capsys.readouterr()
    assert "usage: mlops-tui" in out
    assert "Traceback" not in out + err


def test_the_installed_entry_point_answers_help() -> None:
    exe = shutil.which("mlops-tui", path=str(Path(sys.executable).parent))
    assert exe is not None, "mlops-tui is not installed in this venv"
    done = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "rollback" in done.stdout and "Traceback" not in done.stderr


def test_inventory_before_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-i", EXAMPLE, "check", "--target", "local", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["inventory"] == EXAMPLE


def test_two_different_inventories_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-i", EXAMPLE, "check", "-i", "other.yaml"]) == 2
    assert "two inventories given" in capsys.readouterr().err


def test_the_console_without_a_terminal_says_what_to_do() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "console.cli", "-i", EXAMPLE],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 2
    assert "needs a terminal" in done.stderr and "Traceback" not in done.stderr
