"""The SSH transport (asyncssh): host keys verified, key-only auth, SFTP uploads, port forwards."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import asyncssh

from cluster.errors import (
    AuthenticationFailed,
    HostKeyMismatch,
    HostUnreachable,
    StreamEnded,
    TransferError,
    TransportError,
)
from cluster.inventory.model import Host
from cluster.transport.base import (
    CommandResult,
    OutputStream,
    Transport,
    log,
    logged,
    shown_argv,
    stream_ended,
)
from cluster.transport.handshakes import handshake
from cluster.transport.sshrun import STOP_WAIT_S, run_command, skip_chatter, stream_command


def _ciphers() -> list[str]:
    """asyncssh's default ciphers with AES-GCM first: one OpenSSL call a packet, where its
    chacha20-poly1305 sets up four cipher contexts (8% of the collector's CPU at 200 nodes)."""
    defaults = [alg.decode() for alg in asyncssh.encryption.get_default_encryption_algs()]
    gcm = [alg for alg in defaults if "-gcm@" in alg]
    return gcm + [alg for alg in defaults if alg not in gcm]


_CIPHERS = _ciphers()


class SshTransport(Transport):
    """One asyncssh connection, reused for every command, upload and forward of a run."""

    def __init__(
        self, host: Host, conn: asyncssh.SSHClientConnection, command_timeout: float
    ) -> None:
        super().__init__(host, command_timeout)
        self._conn = conn

    async def run(
        self, argv: Sequence[str], *, timeout: float | None = None, input: str | None = None
    ) -> CommandResult:
        limit = self.command_timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            status, out, err = await run_command(
                self._conn, self.host.name, argv, limit=limit, input=input
            )
        except (asyncssh.Error, OSError) as exc:
            log.info("%s: connection lost while running %s: %s", self.host.name,
                     shown_argv(argv), exc)  # fmt: skip
            raise HostUnreachable(
                self.host.name, f"connection lost while running '{argv[0]}': {exc}"
            ) from None
        return logged(
            self.host.name, CommandResult(tuple(argv), status, out, err, loop.time() - start)
        )

    @asynccontextmanager
    async def stream(
        self, argv: Sequence[str], stdin: bytes | None = None
    ) -> AsyncIterator[OutputStream]:
        try:
            proc = await self._conn.create_process(stream_command(argv), encoding=None)
        except (asyncssh.Error, OSError) as exc:
            raise StreamEnded(self.host.name, f"cannot start '{argv[0]}': {exc}") from None
        try:
            if stdin:
                proc.stdin.write(stdin)
            yield _SshStream(self.host.name, argv[0], proc)
        finally:
            # Closing the channel closes the command's stdin, its cue to end (a root login's
            # sshd refuses signal requests, see sshrun).
            proc.close()
            try:
                await asyncio.wait_for(proc.wait_closed(), STOP_WAIT_S)
            except (TimeoutError, asyncssh.Error, OSError):
                proc.channel.abort()

    @asynccontextmanager
    async def forward(self, remote_host: str, remote_port: int) -> AsyncIterator[tuple[str, int]]:
        try:
            listener = await self._conn.forward_local_port("127.0.0.1", 0, remote_host, remote_port)
        except (asyncssh.Error, OSError) as exc:
            raise HostUnreachable(
                self.host.name, f"cannot forward to {remote_host}:{remote_port}: {exc}"
            ) from None
        try:
            yield "127.0.0.1", listener.get_port()
        finally:
            listener.close()
            await listener.wait_closed()

    async def _stage(self, local: Path, staging: str) -> None:
        try:
            async with self._conn.start_sftp_client() as sftp:
                await sftp.put(str(local), staging, recurse=local.is_dir(), preserve=True)
        except (asyncssh.Error, OSError) as exc:
            raise TransferError(
                self.host.name, f"SFTP upload of {local} to {staging} failed: {exc}"
            ) from None

    @property
    def alive(self) -> bool:
        return not self._conn.is_closed()

    async def close(self) -> None:
        self._conn.close()
        await self._conn.wait_closed()


class _SshStream(OutputStream):
    def __init__(self, host: str, program: str, proc: asyncssh.SSHClientProcess[bytes]) -> None:
        self._host, self._program, self._proc = host, program, proc
        self._started = False

    def send(self, data: bytes) -> None:
        if not self._proc.stdin.is_closing():
            self._proc.stdin.write(data)

    async def read_until(self, separator: bytes) -> bytes:
        try:
            if not self._started:  # in the first read, so the caller's timeout covers it
                await skip_chatter(self._proc)
                self._started = True
            return await self._proc.stdout.readuntil(separator)
        except asyncio.IncompleteReadError:
            pass
        except (asyncssh.Error, OSError) as exc:
            raise StreamEnded(
                self._host, f"connection lost while following '{self._program}': {exc}"
            ) from None
        # stdout's end (the channel's EOF) comes before the exit status: sshd sends EOF when
        # the command closes its output, and the exit status when it has been reaped. So wait
        # for the channel to close, which follows the exit status, before asking for it.
        err = bytearray()
        try:
            async with asyncio.timeout(STOP_WAIT_S):
                err += await self._proc.stderr.read()
                await self._proc.wait_closed()
        except (TimeoutError, asyncssh.Error, OSError) as exc:
            err += f"(its end was not seen whole: {type(exc).__name__})".encode()
        raise stream_ended(self._host, self._program, self._proc.exit_status, bytes(err))


async def open_ssh(
    host: Host,
    *,
    connect_timeout: float,
    keepalive_interval: float,
    command_timeout: float,
    tunnel: SshTransport | None = None,
) -> SshTransport:
    """Connect and authenticate, turning asyncssh's errors into ones that say what to fix."""
    _check_local_files(host)
    options: dict[str, object] = {
        "username": host.user,
        "port": host.port,
        "config": None,  # the inventory is the source of truth, not ~/.ssh/config
        "connect_timeout": connect_timeout,
        "keepalive_interval": keepalive_interval,
        "keepalive_count_max": 3,
        "encryption_algs": _CIPHERS,
        "known_hosts": _known_hosts(host),
    }
    if host.key_file is not None:
        options["client_keys"] = [str(host.key_file)]
        options["agent_path"] = None
    if host.key_passphrase is not None:
        options["passphrase"] = host.key_passphrase.reveal()
    if host.password is not None:
        options["password"] = host.password.reveal()
    else:
        options["password_auth"] = False
        options["kbdint_auth"] = False
    if tunnel is not None:
        options["tunnel"] = tunnel._conn
    where = f"{host.address}:{host.port}" + (f" via {tunnel.host.name}" if tunnel else "")

    def connect(**override: object) -> Awaitable[asyncssh.SSHClientConnection]:
        merged = {**options, **override}
        return handshake(
            host.address,
            host.port,
            lambda: asyncio.wait_for(asyncssh.connect(host.address, **merged), connect_timeout + 1),
        )

    try:
        try:
            conn = await connect()
        except asyncssh.HostKeyNotVerifiable:
            known = _known_hosts_file(host)
            if known is None or _listed(known, host) or not host.accept_new_host_key:
                raise
            # accept-new: a host never seen before; its key is recorded, and from then on a
            # different key is refused like any mismatch.
            conn = await connect(known_hosts=None)
            _record(known, host, conn)
    except asyncssh.HostKeyNotVerifiable as exc:
        known = _known_hosts_file(host)
        if known is not None and not _listed(known, host):
            raise HostKeyMismatch(
                host.name,
                f"host key of {where} is unknown: {known} has no entry for it. Check the "
                "host's key fingerprint out of band, then add it with "
                f"`ssh-keyscan -p {host.port} {host.address} >> {known}`, or set "
                "host_key_policy: accept-new in the inventory to record it on first contact",
            ) from None
        raise HostKeyMismatch(
            host.name,
            f"host key of {where} is not trusted by {known or '~/.ssh/known_hosts'} "
            f"({exc.reason}). If the host was rebuilt, check its new key out of band and "
            "update known_hosts; otherwise someone may be intercepting the connection",
        ) from None
    except asyncssh.PermissionDenied:
        key = host.key_file or "the default keys"
        raise AuthenticationFailed(host.name, f"{host.user}@{where} refused {key}") from None
    except asyncssh.KeyImportError as exc:
        raise AuthenticationFailed(host.name, f"cannot read key {host.key_file}: {exc}") from None
    except (TimeoutError, asyncssh.ConnectionLost) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else str(exc)
        raise HostUnreachable(host.name, f"no SSH connection to {where}: {reason}") from None
    except ConnectionRefusedError:
        raise HostUnreachable(
            host.name, f"connection to {where} refused (is sshd running?)"
        ) from None
    except (asyncssh.Error, OSError) as exc:
        text = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
        setting = _setting_of(host, getattr(exc, "filename", None))
        if setting is not None:  # one of our files went away or became unreadable meanwhile
            text = f"{setting}: {text}"
        raise HostUnreachable(host.name, f"no SSH connection to {where}: {text}") from None
    return SshTransport(host, conn, command_timeout)


def _known_hosts_file(host: Host) -> Path | None:
    """The known_hosts file host keys are checked against (None when checks are off)."""
    if not host.verify_host_key:
        return None
    return host.known_hosts or Path("~/.ssh/known_hosts").expanduser()


def _host_pattern(host: Host) -> str:
    return host.address if host.port == 22 else f"[{host.address}]:{host.port}"


def _listed(known: Path, host: Host) -> bool:
    """Whether known_hosts has any key for this host (a mismatch, not an unknown host)."""
    if not known.exists():
        return False
    try:
        entries = asyncssh.read_known_hosts(str(known))
    except (OSError, ValueError):
        return True  # unreadable: never take it for "unknown" and write to it
    return any(entries.match(host.address, host.address, host.port))


def _record(known: Path, host: Host, conn: asyncssh.SSHClientConnection) -> None:
    """Append the host's key to known_hosts, as `ssh -o StrictHostKeyChecking=accept-new`."""
    key = conn.get_server_host_key()
    if key is None:
        return
    line = f"{_host_pattern(host)} {key.export_public_key().decode().strip()}\n"
    known.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with known.open("a", encoding="utf-8") as fh:
        fh.write(line)


def _check_local_files(host: Host) -> None:
    """Fail before connecting when a file the inventory names cannot be read, saying which
    file and which setting; asyncssh would only say 'No such file or directory'."""
    files: list[tuple[str, Path | None, type[TransportError]]] = [
        ("key_file", host.key_file, AuthenticationFailed)
    ]
    if host.verify_host_key:
        files.append(("known_hosts", host.known_hosts, HostUnreachable))
    for setting, path, error in files:
        if path is None:
            continue
        problem = _unreadable(path)
        if problem is not None:
            raise error(host.name, f"{setting} {path} ({host.origin(setting)}): {problem}")


def _unreadable(path: Path) -> str | None:
    """Why `path` cannot be read as a file, or None when it can."""
    try:
        with path.open("rb"):
            return None
    except FileNotFoundError:
        return "no such file"
    except IsADirectoryError:
        return "is a directory, not a file"
    except OSError as exc:
        return exc.strerror or f"{type(exc).__name__}: {exc}"


def _setting_of(host: Host, filename: object) -> str | None:
    """'key_file /x (hosts.a.key_file)' when `filename` is one of the host's files."""
    for setting, path in (("key_file", host.key_file), ("known_hosts", host.known_hosts)):
        if path is not None and filename is not None and str(path) == str(filename):
            return f"{setting} {path} ({host.origin(setting)})"
    return None


def _known_hosts(host: Host) -> object:
    if not host.verify_host_key:
        return None  # the loader already warned about this host
    if host.known_hosts is not None:
        return _parsed_known_hosts(str(host.known_hosts))
    return ()  # asyncssh's default: ~/.ssh/known_hosts


_KNOWN_HOSTS: dict[str, tuple[tuple[int, int, int], asyncssh.SSHKnownHosts]] = {}


def _parsed_known_hosts(path: str) -> object:
    """The file parsed once while it stays as it is: given a path, asyncssh parses the whole
    file on every connection, which made connecting to 1,000 hosts listed in one file take
    1,000 x 1,000 key decodes. A file we cannot read is passed on as its path, for asyncssh
    to report."""
    try:
        st = os.stat(path)
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = _KNOWN_HOSTS.get(path)
        if cached is None or cached[0] != stamp:
            cached = (stamp, asyncssh.read_known_hosts(path))
            _KNOWN_HOSTS[path] = cached
        return cached[1]
    except (OSError, ValueError):
        return path
