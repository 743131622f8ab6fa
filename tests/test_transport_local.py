"""The local transport: argv never meets a shell, timeouts stop the process, uploads verify."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from cluster.errors import CommandTimeout, TransferError, TransportError
from cluster.inventory import Host, load_inventory
from cluster.inventory.hostfields import HostSpec, resolve
from cluster.inventory.yamlread import Loc
from cluster.transport import Connections
from cluster.transport.local import LocalTransport


def local_transport() -> LocalTransport:
    host = resolve(HostSpec("me", Loc("t", 1, 1), {"connection": "local"}))
    return LocalTransport(host, command_timeout=30)


async def test_arguments_reach_the_program_verbatim(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    t = local_transport()
    r = await t.run(["printf", "%s|", "a b", f"$(touch {marker})", "; rm -rf /"])
    assert r.ok and r.stdout == f"a b|$(touch {marker})|; rm -rf /|"
    assert not marker.exists()


async def test_exit_status_and_missing_programs() -> None:
    t = local_transport()
    assert (await t.run([sys.executable, "-c", "import sys; sys.exit(3)"])).exit_status == 3
    missing = await t.run(["definitely-not-a-program-xyz"])
    assert missing.exit_status == 127 and "not found" in missing.stderr


async def test_timeout_stops_the_command(tmp_path: Path) -> None:
    t = local_transport()
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(CommandTimeout, match=r"longer than 0\.3s"):
        await t.run(["sh", "-c", f"sleep 0.6; touch {tmp_path / 'late'}"], timeout=0.3)
    assert loop.time() - start < 2
    await asyncio.sleep(0.6)
    assert not (tmp_path / "late").exists()  # the whole process group was stopped


async def test_upload_directory_verifies_and_replaces(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "sub" / "b.bin").write_bytes(bytes(range(256)) * 100)
    dest = tmp_path / "remote" / "pkg"
    dest.mkdir(parents=True)
    (dest / "stale.txt").write_text("old version")
    report = await local_transport().upload(src, str(dest))
    assert report.files == 2 and report.bytes == 5 + 25600
    assert sorted(p.name for p in dest.rglob("*") if p.is_file()) == ["a.txt", "b.bin"]
    assert list((tmp_path / "remote").iterdir()) == [dest]  # no staging or backup left behind


class CorruptingTransport(LocalTransport):
    """Flips a byte after copying, as a bad disk or a tampering middlebox would."""

    async def _stage(self, local: Path, staging: str) -> None:
        await super()._stage(local, staging)
        staged = Path(staging)
        victim = staged if staged.is_file() else next(p for p in staged.rglob("*") if p.is_file())
        data = bytearray(victim.read_bytes())
        data[0] ^= 0xFF
        victim.write_bytes(bytes(data))


async def test_a_corrupted_upload_replaces_nothing(tmp_path: Path) -> None:
    src = tmp_path / "model.onnx"
    src.write_bytes(b"new model bytes")
    dest = tmp_path / "remote" / "model.onnx"
    dest.parent.mkdir()
    dest.write_bytes(b"old model")
    t = CorruptingTransport(local_transport().host, 30)
    with pytest.raises(TransferError, match=r"sha256 mismatch: model.onnx\); nothing was replaced"):
        await t.upload(src, str(dest))
    assert dest.read_bytes() == b"old model"
    assert [p.name for p in dest.parent.iterdir()] == ["model.onnx"]


async def test_forward_is_the_address_itself() -> None:
    async with local_transport().forward("127.0.0.1", 8265) as (host, port):
        assert (host, port) == ("127.0.0.1", 8265)


async def test_programs_that_cannot_start_are_results_not_exceptions(tmp_path: Path) -> None:
    t = local_transport()
    through_a_file = await t.run(["/etc/passwd/x"])  # NotADirectoryError
    assert through_a_file.exit_status == 127
    assert through_a_file.stderr == "/etc/passwd/x: command not found"
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x00\x01\x02 not a program")
    junk.chmod(0o755)
    not_executable = await t.run([str(junk), "arg"])  # OSError: Exec format error
    assert not_executable.exit_status == 126
    assert not_executable.stderr == f"{junk}: cannot run: Exec format error"
    directory = await t.run([str(tmp_path)])
    assert directory.exit_status == 126 and directory.stderr.startswith(f"{tmp_path}: cannot run")


async def test_a_cancelled_command_is_killed_and_reaped(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[asyncio.subprocess.Process] = []
    running = asyncio.Event()
    real = asyncio.create_subprocess_exec

    async def spy(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        proc = await real(*args, **kwargs)
        started.append(proc)
        running.set()
        return proc

    monkeypatch.setattr(asyncio, "create_subprocess_exec", spy)
    task = asyncio.create_task(local_transport().run(["sleep", "30"]))
    await running.wait()
    await asyncio.sleep(0.05)  # let run() reach its wait for the command
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Reaped before run() gave up: its exit status is known, so no zombie is left behind.
    assert started[0].returncode == -signal.SIGKILL


class ClosingTransport(LocalTransport):
    """Records the order connections are closed in; one of them fails to close."""

    def __init__(self, host: Host, log: list[str], fail: bool = False) -> None:
        super().__init__(host, 30)
        self.log = log
        self.fail = fail

    async def close(self) -> None:
        self.log.append(self.host.name)
        if self.fail:
            raise OSError("socket already gone")


async def test_connections_close_deepest_first_and_all_despite_a_failure(write_inventory) -> None:
    inv = load_inventory(
        write_inventory(
            "hosts:\n  edge: 127.0.0.11\n  mid:\n    address: 10.0.0.2\n    via: edge\n"
            "  deep:\n    address: 10.0.1.3\n    via: mid\n  me: {connection: local}\n"
        ),
        env={},
    )
    log: list[str] = []
    conns = Connections(inv)
    for name in ("edge", "me", "mid", "deep"):  # the order they happened to be opened in
        conns._open[name] = ClosingTransport(inv.hosts[name], log, fail=name == "mid")
    with pytest.raises(TransportError) as info:
        await conns.aclose()
    assert log.index("deep") < log.index("mid") < log.index("edge")
    assert sorted(log) == ["deep", "edge", "me", "mid"]
    assert info.value.host == "mid"
    assert "closing the connection failed: OSError: socket already gone" in str(info.value)
    assert conns._open == {}


async def test_a_secret_cut_off_mid_read_never_reaches_the_error() -> None:
    """The connection drops after `cat` wrote the token: the error names the file, not it."""
    from cluster.provision.ray_node import read_secret_file
    from cluster.transport.base import CommandResult

    token = "9f" * 32

    class CutTransport:
        host = type("H", (), {"name": "node1"})()

        async def run(self, argv: list[str], **_: object) -> CommandResult:
            return CommandResult(tuple(argv), 255, token[:40], "", 0.1)

    with pytest.raises(TransportError) as info:
        await read_secret_file(CutTransport(), "/srv/auth/c.token")  # type: ignore[arg-type]
    assert token[:8] not in str(info.value)
    assert str(info.value).endswith("cannot read /srv/auth/c.token: exit status 255")
