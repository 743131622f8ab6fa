"""One command over SSH, run so that a timeout really stops it on the host.

Closing the channel does not stop a command that neither reads nor writes (`sleep`), and
OpenSSH refuses signal requests for sessions it runs without privilege separation (root
logins). So the command is started through a tiny POSIX sh wrapper that prints its pid and
then execs the command: sshd made that process a session and process-group leader, so on
a timeout the whole group is killed from a second channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from collections.abc import Sequence

import asyncssh

from cluster.errors import CommandTimeout

# The login shell execs sh, which prints a marked "$$" and becomes the command (same pid).
# Whatever comes before the marker is the login shell's own (a chatty .bashrc) and dropped.
_MARK = "mlops-tui-pid "
_WRAPPER = ("exec", "sh", "-c", f'echo "{_MARK}$$"; exec "$@"', "mlops-tui")
_MAX_CHATTER_LINES = 200
# How long stopping a command (the kill, then the channel close) may take.
STOP_WAIT_S = 5.0


async def run_command(
    conn: asyncssh.SSHClientConnection,
    host: str,
    argv: Sequence[str],
    *,
    limit: float,
    input: str | None = None,
) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of argv; past `limit`, stop it and raise CommandTimeout.

    Connection failures surface as asyncssh.Error or OSError for the caller to explain.
    """
    command = shlex.join([*_WRAPPER, *argv])  # the command sees exactly these arguments
    proc: asyncssh.SSHClientProcess[str] | None = None
    pid: int | None = None
    head = ""
    try:
        # The session's opening is inside the limit too: a host whose processes are frozen
        # (or whose network is cut) never answers it, and its TCP connection stays open.
        async with asyncio.timeout(limit):
            proc = await conn.create_process(command, input=input, errors="replace")
            pid, head = await _leader(proc)
            done = await proc.wait(check=False)
    except TimeoutError:
        if proc is None:
            raise CommandTimeout(
                host, f"no answer to '{argv[0]}' within {limit:g}s: the host did not open a session"
            ) from None
        trouble = await _stop(conn, proc, pid)
        what = f"'{argv[0]}' ran longer than {limit:g}s"
        if trouble:
            raise CommandTimeout(
                host, f"{what}; stopping it failed ({trouble}), so it may still be running"
            ) from None
        raise CommandTimeout(host, f"{what} and was stopped") from None
    except asyncio.CancelledError:
        if proc is not None:
            await asyncio.shield(_stop(conn, proc, pid))
        raise
    status = done.exit_status if done.exit_status is not None else 255
    return status, head + _text(done.stdout), _text(done.stderr)


async def _leader(proc: asyncssh.SSHClientProcess[str]) -> tuple[int | None, str]:
    """The wrapper's pid, read past any login-shell chatter; (None, what was read) when the
    marker never came (the shell failed before running the wrapper)."""
    seen: list[str] = []
    for _ in range(_MAX_CHATTER_LINES):
        line = await proc.stdout.readline()
        if line.startswith(_MARK) and line[len(_MARK) :].strip().isdigit():
            return int(line[len(_MARK) :]), ""
        if not line:
            break
        seen.append(line)
    return None, "".join(seen)


async def _stop(
    conn: asyncssh.SSHClientConnection, proc: asyncssh.SSHClientProcess[str], pid: int | None
) -> str | None:
    """Kill the command's process group, then close its channel; what went wrong, if anything."""
    trouble: str | None = None
    with contextlib.suppress(OSError):  # the channel is closed already
        proc.kill()  # honoured where sshd allows signals; the group kill below always is
    if pid is None:
        trouble = "its process id never arrived"
    else:
        kill = shlex.join(["sh", "-c", 'kill -s KILL -- "-$1"', "sh", str(pid)])
        try:
            # Exit 1 ("no such process") means it ended on its own meanwhile: also fine.
            await asyncio.wait_for(conn.run(kill, check=False), STOP_WAIT_S)
        except (asyncssh.Error, OSError, TimeoutError) as exc:
            trouble = f"kill over SSH: {type(exc).__name__}: {exc}"
    proc.close()
    try:
        await asyncio.wait_for(proc.wait_closed(), STOP_WAIT_S)
    except TimeoutError:
        proc.channel.abort()  # no answer from the host: drop the channel on our side
    return trouble


def stream_command(argv: Sequence[str]) -> str:
    """The command line for a followed stream: the same marked wrapper, so what a chatty
    login shell prints first can be skipped (skip_chatter) before the stream is read."""
    return shlex.join([*_WRAPPER, *argv])


async def skip_chatter(proc: asyncssh.SSHClientProcess[bytes]) -> None:
    """Read up to and including the wrapper's marker line; at EOF, leave the rest to the reader."""
    mark = _MARK.encode()
    for _ in range(_MAX_CHATTER_LINES):
        line = await proc.stdout.readline()
        if not line or line.startswith(mark):
            return


def _text(data: object) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data if isinstance(data, str) else ""
