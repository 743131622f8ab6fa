"""End to end over real OpenSSH servers on 127.0.0.11-13: check, keys, jump hosts, SFTP, forwards."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import subprocess
from pathlib import Path

import asyncssh
import pytest

from cluster.errors import (
    AuthenticationFailed,
    CommandTimeout,
    HostKeyMismatch,
    HostUnreachable,
    TransferError,
)
from cluster.fanout import fan_out
from cluster.inventory import load_inventory
from cluster.transport import Connections
from cluster.transport.ssh import SshTransport
from console.cli import main
from tests.support.sshd import SshdFleet

pytestmark = pytest.mark.e2e


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_three_hosts_json(fleet_inventory, capsys, venv_python: str) -> None:
    code, out, _ = run_cli(capsys, "check", "-i", str(fleet_inventory()), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] and doc["healthy"] == 3 and doc["failed"] == 0
    assert [h["name"] for h in doc["hosts"]] == ["node1", "node2", "node3"]
    for host in doc["hosts"]:
        facts = host["facts"]
        assert facts["python_path"] == venv_python
        assert facts["ray"] == "2.60.0" and facts["onnxruntime"]
        assert facts["cpus"] >= 1 and facts["memory_total"] > 0


def test_a_log_file_says_what_ran_where_and_how_long_it_took(
    fleet_inventory, capsys, tmp_path: Path
) -> None:
    log = tmp_path / "run.log"
    code, _, err = run_cli(
        capsys, "check", "-i", str(fleet_inventory()), "--json", "--log-file", str(log)
    )
    assert code == 0 and "node1" not in err  # the file, not the terminal
    text = log.read_text()
    for host in ("node1", "node2", "node3"):
        assert re.search(rf"DEBUG   mlops_tui.transport: {host}: .+ -> exit 0 in \d+ ms", text)
    assert "<" in text and "chars>" in text  # an inline script is named by its size only
    code, _, err = run_cli(capsys, "-v", "check", "-i", str(fleet_inventory()), "--log-file",
                           str(tmp_path / "nope" / "x.log"))  # fmt: skip
    assert code == 2 and "--log-file" in err and "No such file or directory" in err


def test_check_table_on_a_target(fleet_inventory, capsys) -> None:
    path = fleet_inventory(
        "targets:\n  pair:\n    topology: cluster\n    head: node1\n    workers: [node2]\n"
    )
    code, out, _ = run_cli(capsys, "check", "-i", str(path), "--target", "pair")
    assert code == 0
    assert "node1" in out and "node2" in out and "node3" not in out
    assert "2 healthy, 0 failed" in out


def test_a_stopped_host_fails_alone(fleet: SshdFleet, fleet_inventory, capsys) -> None:
    node2 = fleet.by_name("node2")
    node2.stop()
    try:
        code, out, _ = run_cli(capsys, "check", "-i", str(fleet_inventory()), "--json")
    finally:
        node2.start()
    doc = json.loads(out)
    assert code == 1 and not doc["ok"] and doc["healthy"] == 2
    by_name = {h["name"]: h for h in doc["hosts"]}
    assert by_name["node1"]["ok"] and by_name["node3"]["ok"]
    assert by_name["node2"]["error_type"] == "HostUnreachable"
    assert f"connection to {node2.address}:{node2.port} refused" in by_name["node2"]["error"]


def test_a_wrong_host_key_is_refused(
    fleet: SshdFleet, fleet_inventory, tmp_path: Path, capsys
) -> None:
    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    node2 = fleet.by_name("node2")
    bad = tmp_path / "known_hosts_bad"
    bad.write_text(f"[{node2.address}]:{node2.port} {impostor}\n")
    path = fleet_inventory(hosts_extra={"node2": f"    known_hosts: {bad}"})
    code, out, _ = run_cli(capsys, "check", "-i", str(path), "--json")
    doc = json.loads(out)
    node = {h["name"]: h for h in doc["hosts"]}["node2"]
    assert code == 1 and node["error_type"] == "HostKeyMismatch"
    assert f"host key of {node2.address}:{node2.port} is not trusted by {bad}" in node["error"]
    assert "intercepting" in node["error"]


async def test_host_key_mismatch_raises_before_any_command(
    fleet: SshdFleet, fleet_inventory, tmp_path: Path
) -> None:
    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    node1 = fleet.by_name("node1")
    bad = tmp_path / "kh"
    bad.write_text(f"[{node1.address}]:{node1.port} {impostor}\n")
    inv = load_inventory(fleet_inventory(hosts_extra={"node1": f"    known_hosts: {bad}"}))
    async with Connections(inv) as conns:
        with pytest.raises(HostKeyMismatch):
            await conns.get("node1")


def test_disabled_host_key_checking_warns_every_run(fleet_inventory, capsys) -> None:
    path = fleet_inventory(hosts_extra={"node3": "    host_key_checking: false"})
    code, _, err = run_cli(capsys, "check", "-i", str(path), "--json")
    assert code == 0
    assert "warning:" in err and "host key checking is OFF for node3" in err


async def test_jump_host(fleet: SshdFleet, fleet_inventory) -> None:
    inv = load_inventory(fleet_inventory(hosts_extra={"node3": "    via: node1"}))
    async with Connections(inv) as conns:
        t3 = await conns.get("node3")
        result = await t3.run(["echo", "through the jump host"])
        assert result.stdout.strip() == "through the jump host"
        assert await conns.get("node3") is t3  # reused within the run
    node1 = fleet.by_name("node1")
    node1.stop()
    try:
        async with Connections(inv) as conns:
            with pytest.raises(HostUnreachable, match="jump host node1 is unreachable"):
                await conns.get("node3")
    finally:
        node1.start()


async def test_commands_are_quoted_not_interpreted(fleet_inventory, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    inv = load_inventory(fleet_inventory())
    async with Connections(inv) as conns:
        t = await conns.get("node1")
        r = await t.run(["printf", "%s|", f"; touch {marker}", "$(id)", "a'b\"c"])
    assert r.stdout == f"; touch {marker}|$(id)|a'b\"c|"
    assert not marker.exists()


async def test_sftp_upload_verified_on_the_far_side(fleet_inventory, tmp_path: Path) -> None:
    src = tmp_path / "pkg"
    (src / "inner").mkdir(parents=True)
    (src / "x.py").write_text("print('x')\n")
    (src / "inner" / "weights.bin").write_bytes(b"\x00\x01" * 50_000)
    dest = tmp_path / "far" / "pkg"
    inv = load_inventory(fleet_inventory())
    async with Connections(inv) as conns:
        t = await conns.get("node2")
        report = await t.upload(src, str(dest))
    assert report.files == 2 and report.bytes == 11 + 100_000
    assert (dest / "inner" / "weights.bin").read_bytes() == b"\x00\x01" * 50_000


class TamperingSsh(SshTransport):
    """Changes the staged file on the host between transfer and verification."""

    async def _stage(self, local: Path, staging: str) -> None:
        await super()._stage(local, staging)
        await self.run(["sh", "-c", 'printf X >> "$1"', "sh", staging])


async def test_tampered_upload_is_refused(fleet_inventory, tmp_path: Path) -> None:
    src = tmp_path / "model.onnx"
    src.write_bytes(b"onnx bytes")
    dest = tmp_path / "far" / "model.onnx"
    inv = load_inventory(fleet_inventory())
    async with Connections(inv) as conns:
        real = await conns.get("node1")
        assert isinstance(real, SshTransport)
        tampering = TamperingSsh(real.host, real._conn, 30)
        with pytest.raises(TransferError, match="sha256 mismatch"):
            await tampering.upload(src, str(dest))
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


async def test_port_forward_reaches_a_service_behind_the_host(fleet_inventory) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        name = await reader.readline()
        writer.write(b"hello " + name)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    inv = load_inventory(fleet_inventory())
    try:
        async with Connections(inv) as conns:
            t = await conns.get("node2")
            async with t.forward("127.0.0.1", port) as (lhost, lport):
                assert lport != port
                reader, writer = await asyncio.open_connection(lhost, lport)
                writer.write(b"operator\n")
                await writer.drain()
                assert await reader.readline() == b"hello operator\n"
                writer.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_fan_out_many_commands_over_reused_connections(fleet_inventory) -> None:
    inv = load_inventory(fleet_inventory())
    names = [f"node{1 + i % 3}" for i in range(20)]
    async with Connections(inv) as conns:

        async def work(i: int) -> str:
            t = await conns.get(names[i])
            return (await t.run(["echo", str(i)])).stdout.strip()

        results = {i: r async for i, r in fan_out(range(20), work, limit=8)}
        assert len(conns._open) == 3
    assert results == {i: str(i) for i in range(20)}


def _running(pattern: str) -> bool:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode == 0


async def test_a_timed_out_command_is_stopped_on_the_host(fleet_inventory) -> None:
    seconds = f"30.{secrets.randbelow(10**6):06d}"  # a marker no other process has
    pattern = f"^sleep {re.escape(seconds)}$"
    inv = load_inventory(fleet_inventory())
    async with Connections(inv) as conns:
        t = await conns.get("node1")
        with pytest.raises(CommandTimeout, match=r"'sleep' ran longer than 1s and was stopped"):
            await t.run(["sleep", seconds], timeout=1)
        assert (await t.run(["echo", "still usable"])).stdout.strip() == "still usable"
        for _ in range(50):  # the kill has been sent; allow up to 5 s for it to land
            if not _running(pattern):
                break
            await asyncio.sleep(0.1)
        assert not _running(pattern), "the remote sleep outlived its timeout"


async def test_a_missing_key_or_known_hosts_file_is_named_with_its_setting(
    fleet_inventory, tmp_path: Path
) -> None:
    gone = tmp_path / "no-such-key"
    inv = load_inventory(fleet_inventory(hosts_extra={"node1": f"    key_file: {gone}"}))
    async with Connections(inv) as conns:
        with pytest.raises(AuthenticationFailed) as info:
            await conns.get("node1")
    assert info.value.reason == f"key_file {gone} (hosts.node1.key_file): no such file"
    path = fleet_inventory().read_text().replace("  known_hosts: ", f"  known_hosts: {tmp_path}/x")
    (tmp_path / "kh.yaml").write_text(path)
    inv = load_inventory(tmp_path / "kh.yaml")
    async with Connections(inv) as conns:
        with pytest.raises(HostUnreachable) as unreachable:
            await conns.get("node2")
    known = inv.hosts["node2"].known_hosts
    assert unreachable.value.reason == f"known_hosts {known} (defaults.known_hosts): no such file"


async def test_a_login_shell_that_greets_on_stdout_changes_nothing(
    fleet_inventory, tmp_path: Path
) -> None:
    from cluster.provision.ray_node import read_secret_file

    secret = tmp_path / "secret"
    secret.write_text("s3cr3t-token\n")
    inv = load_inventory(fleet_inventory())
    async with Connections(inv) as conns:
        t = await conns.get("node3")  # its .bashrc-like BASH_ENV says "Welcome to node3!"
        assert (await t.run(["echo", "hello"])).stdout == "hello\n"
        assert await read_secret_file(t, str(secret)) == "s3cr3t-token"
        async with t.stream(["printf", "a\\nb\\n"]) as stream:
            assert await stream.read_until(b"\n") == b"a\n"
        # A timeout still reaches the command (its pid comes after the greeting).
        with pytest.raises(CommandTimeout, match="was stopped"):
            await t.run(["sleep", "30"], timeout=1)


async def test_an_unreadable_secret_file_is_an_error_not_a_missing_one(
    fleet_inventory, tmp_path: Path
) -> None:
    from cluster.errors import TransportError
    from cluster.provision.ray_node import read_secret_file

    inv = load_inventory(fleet_inventory())
    async with Connections(inv) as conns:
        t = await conns.get("node1")
        assert await read_secret_file(t, str(tmp_path / "none")) is None
        unreadable = tmp_path / "token"
        unreadable.mkdir()  # root reads every file; a directory in its place fails as well
        with pytest.raises(TransportError, match=f"cannot read {unreadable}: cat: .*directory"):
            await read_secret_file(t, str(unreadable))
        empty = tmp_path / "empty"
        empty.write_text("")  # no token any cluster could run with
        assert await read_secret_file(t, str(empty)) is None


async def test_sixty_operations_at_once_pass_sshds_default_max_startups(fleet_inventory) -> None:
    """Each operation its own connection, 20 per host at once: sshd's default MaxStartups
    (10:30:100, which the test hosts keep) refuses handshakes beyond ten; none may fail."""
    inv = load_inventory(fleet_inventory())

    async def operation(i: int) -> str:
        async with Connections(inv) as conns:
            t = await conns.get(f"node{i % 3 + 1}")
            return (await t.run(["echo", str(i)])).stdout.strip()

    answers = await asyncio.gather(*(operation(i) for i in range(60)), return_exceptions=True)
    failed = [a for a in answers if isinstance(a, BaseException)]
    assert failed == [], failed[:3]
    assert answers == [str(i) for i in range(60)]


async def test_an_unknown_host_is_refused_saying_how_to_accept_it(
    fleet: SshdFleet, fleet_inventory, tmp_path: Path
) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")  # a fresh machine: nothing known yet
    text = (
        fleet_inventory()
        .read_text()
        .replace(f"known_hosts: {fleet.known_hosts}", f"known_hosts: {known}")
    )
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    node1 = fleet.by_name("node1")
    async with Connections(load_inventory(path)) as conns:
        with pytest.raises(HostKeyMismatch) as info:
            await conns.get("node1")
    message = str(info.value)
    assert f"{known} has no entry for it" in message
    assert f"ssh-keyscan -p {node1.port} 127.0.0.11 >> {known}" in message
    assert "host_key_policy: accept-new" in message
    # accept-new: recorded on first contact...
    path.write_text(text.replace("defaults:\n", "defaults:\n  host_key_policy: accept-new\n", 1))
    async with Connections(load_inventory(path)) as conns:
        t = await conns.get("node1")
        assert (await t.run(["echo", "ok"])).stdout == "ok\n"
    assert known.read_text() == f"[127.0.0.11]:{node1.port} {node1.host_key_public}\n"
    # ...and a different key for it afterwards is refused, like any mismatch.
    other = fleet.by_name("node2").host_key_public
    known.write_text(f"[127.0.0.11]:{node1.port} {other}\n")
    async with Connections(load_inventory(path)) as conns:
        with pytest.raises(HostKeyMismatch, match="is not trusted by"):
            await conns.get("node1")
    assert known.read_text() == f"[127.0.0.11]:{node1.port} {other}\n"  # nothing added


def test_host_key_policy_is_checked(write_inventory) -> None:
    from cluster.errors import InventoryError

    bad = write_inventory("defaults:\n  host_key_policy: yes-please\nhosts:\n  a: 127.0.0.11\n")
    with pytest.raises(InventoryError) as info:
        load_inventory(bad, env={})
    assert "defaults.host_key_policy: must be one of strict, accept-new, got 'yes-please'" in str(
        info.value.problems[0]
    )
