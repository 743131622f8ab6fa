"""What every way of reaching a host offers: run a command, upload with checksums, forward a port."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import shlex
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cluster.errors import StreamEnded, TransferError
from cluster.inventory.model import Host
from cluster.remote import script
from serving.artifacts import sha256_file

log = logging.getLogger("mlops_tui.transport")


def shown_argv(argv: Sequence[str]) -> str:
    """A command for a log line: an inline script or any long argument is named by its size
    (nothing secret is ever on a command line: secrets go on stdin, which is never logged)."""
    return " ".join(
        f"<{len(a)} chars>" if "\n" in a or len(a) > 120 else shlex.quote(a) for a in argv
    )


def logged(host: str, result: CommandResult) -> CommandResult:
    """`result`, after a debug line saying what ran where, how it ended and how long it took."""
    log.debug("%s: %s -> exit %d in %.0f ms", host, shown_argv(result.argv), result.exit_status,
              1000 * result.duration_s)  # fmt: skip
    return result


@dataclass(frozen=True)
class CommandResult:
    """A finished command: exit status and captured output, decoded as UTF-8."""

    argv: tuple[str, ...]
    exit_status: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def tail(self, lines: int = 5) -> str:
        """The last lines of stderr (or stdout), for error messages."""
        text = (self.stderr or self.stdout).strip()
        return "\n".join(text.splitlines()[-lines:])

    def reason(self) -> str:
        """The last line of stderr, or the exit status: never stdout, which may hold a secret
        (a read cut off mid-way) or a file list."""
        last = self.stderr.strip().splitlines()[-1:]
        return last[0] if last else f"exit status {self.exit_status}"


@dataclass(frozen=True)
class UploadReport:
    """What arrived where, verified by sha256 on the far side."""

    local: Path
    remote: str
    files: int
    bytes: int
    duration_s: float


class OutputStream(ABC):
    """The stdout of a command that keeps running, read a block at a time."""

    @abstractmethod
    async def read_until(self, separator: bytes) -> bytes:
        """The next block, separator included; StreamEnded once the command has ended."""

    @abstractmethod
    def send(self, data: bytes) -> None:
        """Write to the command's stdin (a command that ended just does not read it)."""


def stream_ended(host: str, program: str, status: int | None, stderr: bytes) -> StreamEnded:
    """The error for a followed command that ended: its exit status and last stderr lines."""
    tail = "\n".join(stderr.decode("utf-8", "replace").strip().splitlines()[-5:])
    ended = f"'{program}' ended" + (f" (exit {status})" if status is not None else "")
    return StreamEnded(host, ended + (f": {tail}" if tail else ""))


class Transport(ABC):
    """One open way to a host. Commands are argument lists: never shell strings."""

    def __init__(self, host: Host, command_timeout: float) -> None:
        self.host = host
        self.command_timeout = command_timeout

    @abstractmethod
    async def run(
        self, argv: Sequence[str], *, timeout: float | None = None, input: str | None = None
    ) -> CommandResult:
        """Run argv on the host and wait for it; CommandTimeout past `timeout`."""

    @abstractmethod
    def stream(
        self, argv: Sequence[str], stdin: bytes | None = None
    ) -> AbstractAsyncContextManager[OutputStream]:
        """Start argv on the host and follow its stdout; leaving the context stops it (its
        stdin closes, and a local one is killed). `stdin` is written first and the stream
        stays open (a secret the command needs, never on its command line)."""

    @abstractmethod
    def forward(
        self, remote_host: str, remote_port: int
    ) -> AbstractAsyncContextManager[tuple[str, int]]:
        """A local (host, port) that reaches remote_host:remote_port as seen from the host."""

    @abstractmethod
    async def _stage(self, local: Path, staging: str) -> None:
        """Copy `local` (file or directory) to `staging` on the host."""

    @property
    def alive(self) -> bool:
        """False once the connection under this transport is gone."""
        return True

    @abstractmethod
    async def close(self) -> None:
        """Release the connection; safe to call twice."""

    async def upload(self, local: Path, remote: str) -> UploadReport:
        """Copy to a staging path, verify every file's sha256 there, then move into place.

        A failed or corrupted transfer never replaces what was at `remote` before.
        """
        loop = asyncio.get_running_loop()
        start = loop.time()
        if not local.exists():
            raise TransferError(self.host.name, f"nothing to upload: {local} does not exist")
        expected, size = await asyncio.to_thread(local_manifest, local)
        staging = f"{remote.rstrip('/')}.partial-{secrets.token_hex(4)}"
        parent = str(PurePosixPath(remote).parent)
        made = await self.run(["mkdir", "-p", parent])
        if not made.ok:
            raise TransferError(self.host.name, f"cannot create {parent}: {made.tail()}")
        await self._stage(local, staging)
        result = await self.run(
            [self.host.script_python, "-c", script("place"), staging, remote],
            input=json.dumps(expected),
        )
        if not result.ok:
            raise TransferError(self.host.name, f"verifying {remote} failed: {result.tail()}")
        verdict = json.loads(result.stdout)
        if not verdict.get("ok"):
            bad = (
                verdict.get("mismatch", []) + verdict.get("missing", []) + verdict.get("extra", [])
            )
            names = ", ".join(b or local.name for b in bad[:5])
            raise TransferError(
                self.host.name,
                f"upload of {local} to {remote} arrived with different contents "
                f"(sha256 mismatch: {names}); nothing was replaced",
            )
        return UploadReport(local, remote, len(expected), size, loop.time() - start)


# (root, every file's name, size and mtime) -> manifest: one model or wheelhouse shipped to a
# fleet is hashed once per run, not once per host.
_MANIFESTS: dict[tuple[object, ...], tuple[dict[str, str], int]] = {}
_MANIFESTS_MAX = 64


def local_manifest(root: Path) -> tuple[dict[str, str], int]:
    """sha256 of every file under root (keyed by relative POSIX path) and the total size.

    Remembered while no file's size or mtime changes (a stat walk, far cheaper than hashing).
    """
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    stats = [(p, p.stat()) for p in files]
    key = (str(root.resolve()), *((str(p), st.st_size, st.st_mtime_ns) for p, st in stats))
    found = _MANIFESTS.get(key)
    if found is not None:
        return dict(found[0]), found[1]
    if root.is_file():
        out = {"": sha256_file(root)}
    else:
        out = {p.relative_to(root).as_posix(): sha256_file(p) for p, _ in stats}
    total = sum(st.st_size for _, st in stats)
    if len(_MANIFESTS) >= _MANIFESTS_MAX:
        _MANIFESTS.clear()
    _MANIFESTS[key] = (out, total)
    return dict(out), total
