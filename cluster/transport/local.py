"""The `connection: local` transport: the same operations on this machine, without SSH."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from cluster.errors import CommandTimeout, TransferError
from cluster.transport.base import CommandResult, Transport


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
        return CommandResult(
            tuple(argv),
            proc.returncode if proc.returncode is not None else -1,
            out.decode("utf-8", "replace"),
            err.decode("utf-8", "replace"),
            loop.time() - start,
        )

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
