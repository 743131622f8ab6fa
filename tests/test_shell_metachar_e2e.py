"""Shell metacharacters in every inventory string that reaches a host, through a real `apply`
over real sshd: each value is refused when the inventory loads (with its location) or reaches
the host quoted, so the canary files it would create never appear.

The host's Ray port is held by this test, so every apply stops at its preflight, after it has
observed the host with the hostile values (remote commands, paths, the python it runs) and
before it starts anything. Host `labels` never reach a host (they group hosts in the
inventory), so they are not here."""

from __future__ import annotations

import contextlib
import io
import json
import secrets
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.cli import main
from tests.support.leaks import run_temp_dir
from tests.support.ports import free_port
from tests.support.sshd import SshdFleet, ssh_inventory_yaml

pytestmark = [pytest.mark.e2e]


def hostile(canaries: Path, tag: str) -> str:
    """One value trying every way a shell could run it: $(), backticks, ;, |, &&, quotes."""
    c = canaries / tag
    return (f"x$(touch$IFS{c}-1)`touch$IFS{c}-2`;touch$IFS{c}-3|touch$IFS{c}-4"
            f"&&touch$IFS{c}-5'\"\\*")  # fmt: skip


@pytest.fixture
def held_port(fleet: SshdFleet) -> Iterator[int]:
    """node3's Ray port, held by another program (this test)."""
    address = fleet.by_name("node3").address
    port = free_port(address)
    with socket.socket() as s:
        s.bind((address, port))
        s.listen()
        yield port


def apply(path: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["apply", "-i", str(path), "--yes"])
    return code, out.getvalue() + err.getvalue()


@pytest.mark.parametrize("field", ["remote_dir", "python", "user", "venv", "requirements"])
def test_hostile_values_never_run_on_a_host(
    fleet: SshdFleet, tmp_path: Path, held_port: int, field: str
) -> None:
    canaries = tmp_path / "canaries"
    canaries.mkdir()
    value = hostile(canaries, field)
    remote_dir = tmp_path / "root"
    host = {
        "remote_dir": json.dumps(
            f"{remote_dir}{value}" if field == "remote_dir" else str(remote_dir)
        ),
        "ray": f"{{port: {held_port}}}",
    }
    if field in ("python", "user"):
        host[field] = json.dumps(f"{sys.executable}{value}" if field == "python" else value)
    if field in ("venv", "requirements"):
        venv = f"{tmp_path}/venv{value}" if field == "venv" else f"{tmp_path}/venv"
        requirements = [f"ray{value}"] if field == "requirements" else ["ray"]
        host["bootstrap"] = json.dumps({"venv": venv, "requirements": requirements})
    lines = "\n".join(f"    {k}: {v}" for k, v in host.items())
    text = ssh_inventory_yaml(fleet, sys.executable, host_lines={"node3": lines})
    text += "targets:\n  one: {topology: single, host: node3}\n"  # the other hosts: unused
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    code, said = apply(path)
    assert code != 0 and "Traceback" not in said, said
    assert not list(canaries.iterdir()), f"{field}: a shell ran part of the value"
    if field in ("remote_dir", "venv", "requirements"):
        # Observed with the value, then stopped before starting anything: the held port.
        assert str(held_port) in said and "node3" in said, said
    elif field == "python":
        assert "node3" in said and "python" in said, said
    else:
        assert "node3" in said, said


def test_a_real_apply_runs_its_steps_with_hostile_values_quoted(
    fleet: SshdFleet, tmp_path: Path
) -> None:
    """No port held: apply uploads the wheelhouse into a hostile remote_dir, creates a venv at
    a hostile path and hands pip a hostile requirement (from an empty wheelhouse: pip refuses
    it at once, with no network). Every path is created as written; nothing is run."""
    short = run_temp_dir("mc-")  # Ray's socket paths limit remote_dir to ~31 characters
    tag = secrets.token_hex(2)
    canaries = tmp_path / "canaries"
    canaries.mkdir()
    remote_dir = f"{short}/$(id>c{tag})"  # a shell would write c{tag} in its working directory
    venv = f"{short}/v{hostile(canaries, 'venv')}"
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    bootstrap = {"venv": venv, "requirements": [f"ray{hostile(canaries, 'req')}"],
                 "wheelhouse": str(wheels)}  # fmt: skip
    lines = f"    remote_dir: {json.dumps(remote_dir)}\n    bootstrap: {json.dumps(bootstrap)}"
    text = ssh_inventory_yaml(fleet, sys.executable, host_lines={"node3": lines})
    path = tmp_path / "inventory.yaml"
    path.write_text(text + "targets:\n  one: {topology: single, host: node3}\n")
    try:
        code, said = apply(path)
        assert code == 1 and "Traceback" not in said, said
        assert "pip install into" in said and "node3" in said, said
        assert not list(canaries.iterdir()), "a shell ran part of the venv or requirement"
        assert not (Path.home() / f"c{tag}").exists() and not (short / f"c{tag}").exists()
        assert (Path(remote_dir) / "wheelhouse").is_dir()  # uploaded where the value says
        assert (Path(venv) / "bin" / "python").exists()  # and so was the venv made
    finally:
        shutil.rmtree(short)
