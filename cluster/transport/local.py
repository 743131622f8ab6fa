"""The `connection: local` transport: the same operations on this machine, without SSH."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from cluster.errors import CommandTimeout, StreamEnded, TransferError
from cluster.transport.base import CommandResult, OutputStream, Transport, logged, stream_ended

# A followed command's blocks may be this long (asyncio's default stops at 64 KiB).
STREAM_LIMIT = 16 * 1024 * 1024


class LocalTransport(Transport):
    """Runs argv directly with asyncio subprocesses; a port "forward" is the port itself."""

    async def run(
        self, argv: Sequence[str], *, timeout: float | None = None, input: str | None = None
    ) -> CommandResult:
        limit = self.command_timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # so a timeout can stop the whole process group
            )
        except OSError as exc:
            # What a shell would say: 127 when there is no such program, 126 when it exists
            # but cannot run (a directory, no permission, not an executable format, ...).
            return _not_started(argv, exc)
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(input.encode() if input is not None else None), limit
            )
        except TimeoutError:
            _kill_group(proc.pid)
            await proc.wait()
            raise CommandTimeout(
                self.host.name, f"'{argv[0]}' ran longer than {limit:g}s and was stopped"
            ) from None
        except asyncio.CancelledError:
            _kill_group(proc.pid)
            # Reap it even though we are being cancelled, or it lingers as a zombie.
            await asyncio.shield(proc.wait())
            raise
        return logged(
            self.host.name,
            CommandResult(
                tuple(argv),
                proc.returncode if proc.returncode is not None else -1,
                out.decode("utf-8", "replace"),
                err.decode("utf-8", "replace"),
                loop.time() - start,
            ),
        )

    @asynccontextmanager
    async def stream(
        self, argv: Sequence[str], stdin: bytes | None = None
    ) -> AsyncIterator[OutputStream]:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,  # closed when we leave: the command's cue to end
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                limit=STREAM_LIMIT,
            )
        except OSError as exc:
            raise StreamEnded(self.host.name, _not_started(argv, exc).stderr) from None
        try:
            if stdin and proc.stdin is not None:
                proc.stdin.write(stdin)
                with contextlib.suppress(ConnectionError):  # it ended already: read says why
                    await proc.stdin.drain()
            yield _LocalStream(self.host.name, argv[0], proc)
        finally:
            _kill_group(proc.pid)
            await asyncio.shield(proc.wait())

    @asynccontextmanager
    async def forward(self, remote_host: str, remote_port: int) -> AsyncIterator[tuple[str, int]]:
        yield remote_host, remote_port

    async def _stage(self, local: Path, staging: str) -> None:
        target = Path(staging).expanduser()
        try:
            if local.is_dir():
                await asyncio.to_thread(shutil.copytree, local, target)
            else:
                await asyncio.to_thread(shutil.copy2, local, target)
        except OSError as exc:
            raise TransferError(
                self.host.name, f"copying {local} to {target} failed: {exc}"
            ) from None

    async def close(self) -> None:
        return None


class _LocalStream(OutputStream):
    def __init__(self, host: str, program: str, proc: asyncio.subprocess.Process) -> None:
        self._host, self._program, self._proc = host, program, proc

    def send(self, data: bytes) -> None:
        if self._proc.stdin is not None and not self._proc.stdin.is_closing():
            self._proc.stdin.write(data)

    async def read_until(self, separator: bytes) -> bytes:
        assert self._proc.stdout is not None and self._proc.stderr is not None
        try:
            return await self._proc.stdout.readuntil(separator)
        except asyncio.IncompleteReadError:
            status = await self._proc.wait()
            err = await self._proc.stderr.read()
            raise stream_ended(self._host, self._program, status, err) from None
        except asyncio.LimitOverrunError:
            raise StreamEnded(
                self._host, f"'{self._program}' wrote more than {STREAM_LIMIT} bytes in one block"
            ) from None


def _not_started(argv: Sequence[str], exc: OSError) -> CommandResult:
    """The result a shell would give for a program that could not be started."""
    program = argv[0] if argv else "(empty command)"
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        return CommandResult(tuple(argv), 127, "", f"{program}: command not found", 0.0)
    reason = exc.strerror or type(exc).__name__
    return CommandResult(tuple(argv), 126, "", f"{program}: cannot run: {reason}", 0.0)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
