"""Bootstrap over real SSH: a venv made on the host and filled only from an uploaded wheelhouse
(the air-gapped path: pip runs with --no-index), recognised as current by the next plan."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from console.cli import main
from tests.support.leaks import run_temp_dir
from tests.support.sshd import SshdFleet, ssh_inventory_yaml

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
PACKAGE = "mlops_tui_wheelhouse_probe"


def make_wheel(directory: Path, version: str) -> Path:
    """A real, minimal pure-Python wheel (PEP 427), written by hand: no build tools needed."""
    name = f"{PACKAGE}-{version}"
    files = {
        f"{PACKAGE}/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{name}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: {version}\n"
        ).encode(),
        f"{name}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{name}.dist-info/RECORD,,")
    files[f"{name}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = directory / f"{name}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel


def test_bootstrap_from_a_wheelhouse(
    fleet: SshdFleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remote = run_temp_dir("mb-")
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    make_wheel(wheelhouse, "1.0")
    venv = remote / "venv"
    inventory = tmp_path / "inventory.yaml"
    bootstrap = (
        f"    bootstrap: {{venv: {venv}, requirements: ['{PACKAGE}==1.0'],"
        f" wheelhouse: {wheelhouse}}}"
    )
    text = ssh_inventory_yaml(fleet, sys.executable, host_lines={"node3": bootstrap})
    inventory.write_text(
        text.replace("defaults:\n", f"defaults:\n  remote_dir: {remote}\n  command_timeout: 300\n")
        + "targets:\n  shops: {topology: edge, hosts: [node3]}\n"
    )
    try:
        assert main(["plan", "-i", str(inventory), "--json"]) == 4
        [plan] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        kinds = [a["kind"] for a in plan["actions"]]
        assert kinds[0] == "bootstrap" and "start-ray" in kinds, plan
        assert f"from wheelhouse {wheelhouse}" in plan["actions"][0]["detail"]

        main(["apply", "-i", str(inventory), "--json", "--yes"])
        events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        done = {e["step"] for e in events if e["event"] == "step_done"}
        assert "bootstrap" in done, events
        # The venv exists on the host and runs the wheelhouse's package (pip had no index).
        check = subprocess.run(
            [str(venv / "bin" / "python"), "-c", f"import {PACKAGE}; print({PACKAGE}.VERSION)"],
            capture_output=True,
            text=True,
        )
        assert check.stdout.strip() == "1.0", check.stderr
        assert (remote / "wheelhouse").is_dir()
        # Ray was not in the wheelhouse: starting it fails, and says why.
        failed = [e for e in events if e["event"] == "step_failed"]
        assert [e["step"] for e in failed] == ["start-ray"]
        assert failed[0]["error"] == (
            f"Ray is not installed for {venv}/bin/python (add ray[serve] to bootstrap.requirements)"
        )

        # The venv is current now: the next plan does not bootstrap again...
        main(["plan", "-i", str(inventory), "--json"])
        [plan] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert "bootstrap" not in [a["kind"] for a in plan["actions"]]

        # ...until the wheelhouse changes.
        make_wheel(wheelhouse, "1.1")
        main(["plan", "-i", str(inventory), "--json"])
        [plan] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert next(a["kind"] for a in plan["actions"]) == "bootstrap"
    finally:
        shutil.rmtree(remote, ignore_errors=True)
