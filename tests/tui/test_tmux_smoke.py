"""The installed `mlops-tui` in a real terminal: tmux at 80x24, keys typed, the screen read
back with capture-pane, as an operator on a bastion would see it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ray_node import descendants

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

INVENTORY = """\
defaults:
  remote_dir: {root}/remote
  model_store: {root}/models
  ray: {{port: 26379, dashboard_port: 28265, metrics_port: 28080, serve_port: 28000}}
hosts:
  here:
    connection: local
    address: 127.0.0.2
    python: {python}
targets:
  solo: {{topology: single, host: here}}
apps:
  cancer:
    target: solo
    model: breast-cancer:1
    route: /cancer
"""


class Tmux:
    """One tmux server of our own (its own socket), killed at the end."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def run(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "smoke")

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.screen()
            if text in shown:
                return shown
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never showed; the screen:\n{self.screen()}")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "smoke", *keys)

    def alive(self) -> bool:
        done = subprocess.run(
            ["tmux", "-L", self.socket, "has-session", "-t", "smoke"], capture_output=True
        )
        return done.returncode == 0


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is missing: `make test` installs it (apt-get install tmux)")
    server = Tmux(f"mlops-smoke-{tmp_path.name}")
    try:
        yield server
    finally:
        panes = subprocess.run(
            ["tmux", "-L", server.socket, "list-panes", "-a", "-F", "#{pane_pid}"],
            capture_output=True, text=True,
        )  # fmt: skip
        roots = {int(p) for p in panes.stdout.split() if p.isdigit()}
        subprocess.run(["tmux", "-L", server.socket, "kill-server"], capture_output=True)
        for pid in descendants(roots) if roots else ():  # a console that did not quit
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_the_installed_console_in_tmux_at_80x24(tmux: Tmux, tmp_path: Path) -> None:
    exe = shutil.which("mlops-tui", path=str(Path(sys.executable).parent))
    assert exe is not None
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(INVENTORY.format(root=tmp_path, python=sys.executable))
    tmux.run("-f", "/dev/null", "new-session", "-d", "-s", "smoke", "-x", "80", "-y", "24",
             f"{exe} -i {inventory}; echo EXITED $?; sleep 30")  # fmt: skip
    tmux.run("set", "-sg", "escape-time", "10")
    shown = tmux.wait_for("cancer")  # the overview, on the app of the inventory
    assert "Apps" in shown and "live · split" in shown
    tmux.keys("?")
    tmux.wait_for("Keys on this screen")
    tmux.keys("Escape")
    tmux.wait_for("live · split")
    tmux.keys(":")
    tmux.wait_for(":app NAME")
    tmux.keys("hosts", "Enter")
    shown = tmux.wait_for("1 healthy, 0 failed", timeout=60)
    assert "here" in shown and "local" in shown
    tmux.keys("Escape")
    tmux.wait_for("live · split")
    tmux.keys(":")
    tmux.wait_for(":app NAME")  # the command line is open: typing now reaches it
    tmux.keys("app canc")
    tmux.wait_for("app cancer")  # the completion, offered as you type
    tmux.keys("Tab", "Enter")
    tmux.wait_for("cancer on solo · route /cancer")
    tmux.keys("q")
    assert "EXITED 0" in tmux.wait_for("EXITED")
