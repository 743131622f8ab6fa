"""The headless CLI: exit codes, default inventory, clear errors and no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from console.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_local_target_of_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["check", "-i", str(ROOT / "inventory.example.yaml"), "--target", "local", "--json"]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    [host] = doc["hosts"]
    assert host["name"] == "laptop" and host["endpoint"] == "local"
    assert host["facts"]["python_path"] == sys.executable


def test_invalid_inventory_exits_2_with_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("hosts:\n  a: {adress: x}\ntargets:\n  t: {topology: single, host: b}\n")
    assert main(["check", "-i", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "invalid inventory (2 problem(s))" in err
    assert f"{bad}:2:7: hosts.a.adress: unknown key 'adress' (did you mean 'address'?)" in err
    assert "targets.t.host: 'b' is not a host" in err


def test_unknown_target_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-i", str(ROOT / "inventory.example.yaml"), "--target", "nope"]) == 2
    assert "no target named 'nope'" in capsys.readouterr().err


def test_default_inventory_lookup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLOPS_INVENTORY", raising=False)
    assert main(["check"]) == 2
    assert (
        "no inventory: pass -i PATH, set $MLOPS_INVENTORY, or create ./inventory.yaml"
        in capsys.readouterr().err
    )
    inv = tmp_path / "mine.yaml"
    inv.write_text("hosts:\n  me: {connection: local}\n")
    monkeypatch.setenv("MLOPS_INVENTORY", str(inv))
    assert main(["check", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["inventory"] == str(inv)
    monkeypatch.delenv("MLOPS_INVENTORY")
    (tmp_path / "inventory.yaml").write_text("hosts:\n  here: {connection: local}\n")
    assert main(["check", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hosts"][0]["name"] == "here"


def test_bad_arguments_exit_2_without_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "console.cli", "check", "--tagret", "x"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert "unrecognized arguments: --tagret x" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_python_on_a_host_is_a_failed_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = tmp_path / "i.yaml"
    inv.write_text("hosts:\n  me:\n    connection: local\n    python: /nonexistent/python3\n")
    assert main(["check", "-i", str(inv), "--json"]) == 1
    [host] = json.loads(capsys.readouterr().out)["hosts"]
    assert (
        host["error"] == "python not found at '/nonexistent/python3' (set python: in the inventory)"
    )


def test_tail_unknown_app_and_unreachable_app(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cluster.inventory.hostfields import LOCAL_ADDRESS
    from tests.support.ports import free_port

    inv = tmp_path / "i.yaml"
    inv.write_text(
        f"hosts:\n  me:\n    connection: local\n    ray: {{metrics_port: {free_port(LOCAL_ADDRESS)}, serve_port: {free_port(LOCAL_ADDRESS)}}}\n"
        "targets:\n  t: {topology: single, host: me}\napps:\n  m: {target: t, model: x}\n"
    )
    assert main(["tail", "nope", "-i", str(inv)]) == 2
    assert "no app named 'nope'" in capsys.readouterr().err
    assert (
        main(["tail", "m", "-i", str(inv), "--duration", "2s", "--interval", "500ms", "--json"])
        == 1
    )
    frames = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (
        frames and frames[-1]["nodes"] == {"me": "stale"} and "Connect" in frames[-1]["errors"][0]
    )
    assert main(["tail", "m", "-i", str(inv), "--duration", "soon"]) == 2
    assert "'soon' is not a duration" in capsys.readouterr().err


def test_a_host_whose_python_cannot_start_fails_alone(tmp_path: Path) -> None:
    inv = tmp_path / "i.yaml"
    inv.write_text(
        "hosts:\n  good: {connection: local}\n"
        "  odd:\n    connection: local\n    address: 127.0.0.3\n    python: /etc/passwd/x\n"
    )
    # A child process with a time limit: when the error escaped, the run never ended.
    proc = subprocess.run(
        [sys.executable, "-m", "console.cli", "check", "-i", str(inv), "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    hosts = {h["name"]: h for h in json.loads(proc.stdout)["hosts"]}
    assert hosts["good"]["ok"]
    assert hosts["odd"]["error"] == (
        "python not found at '/etc/passwd/x' (set python: in the inventory)"
    )


UNCHECKED = (
    "hosts:\n  h:\n    address: 127.0.0.1\n    port: 1\n    user: '[/]'\n"
    "    host_key_checking: false\n"
)


def test_inventory_and_host_text_is_never_read_as_markup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = tmp_path / "i.yaml"
    inv.write_text(UNCHECKED)
    assert main(["check", "-i", str(inv)]) == 1
    out, err = capsys.readouterr()
    assert "[/]@127.0.0.1:1" in out and "FAILED" in out
    assert "Traceback" not in out + err and "MarkupError" not in out + err
    assert "host key checking is OFF for h ([/]@127.0.0.1:1)" in err


def test_facts_with_brackets_render_as_written() -> None:
    from rich.console import Console

    from cluster.check import HostChecked, HostFacts
    from console.render.check import check_table

    facts = HostFacts(
        hostname="x",
        os="[bold]Linux",
        os_release="6",
        arch="[/]",
        cpus=2,
        load_1m=None,
        memory_total=None,
        memory_available=None,
        disk_free=None,
        python="3.11 [red]",
        python_path="/usr/bin/python3",
        ray="[/red]",
        onnxruntime=None,
    )
    console = Console(record=True, width=200)
    console.print(check_table([HostChecked("h", "[i]@a:22", facts, 0.1)]))
    text = console.export_text()
    for literal in ("[bold]Linux [/]", "3.11 [red]", "[/red]", "[i]@a:22"):
        assert literal in text


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--json"],
        ["destroy"],  # no terminal and no --yes: refused after loading
        ["swap", "nope", "--to", "2"],
        ["tail", "nope"],
        ["rollback", "nope"],
        ["check", "--json"],
    ],
)
def test_every_command_warns_about_host_key_checking_once(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = tmp_path / "i.yaml"
    inv.write_text(UNCHECKED)
    main([*argv, "-i", str(inv)])
    err = capsys.readouterr().err
    assert err.count("host key checking is OFF for h") == 1, err
