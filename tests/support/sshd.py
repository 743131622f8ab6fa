"""Real OpenSSH test hosts: one `sshd -D` per loopback address (127.0.0.11, .12, ...).

Each host gets its own host key; every host accepts one generated client key; a
known_hosts file lists them all. Used by pytest fixtures and by the benchmarks.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from tests.support.ports import free_port
from tests.support.ray_node import descendants

SSHD = "/usr/sbin/sshd"
FIRST_OCTET = 11


@dataclass
class SshdHost:
    """One running sshd; `stop()` and `start()` let tests take it down and bring it back."""

    name: str
    address: str
    port: int
    workdir: Path
    host_key_public: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.workdir / "sshd_config"

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        log = (self.workdir / "sshd.log").open("ab")
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.config)], stdout=log, stderr=log
        )
        log.close()
        _wait_listening(self.address, self.port, self.proc, self.workdir / "sshd.log")

    def stop(self) -> None:
        """The listener and every connection it still serves (a session, or one accepted and
        still before authentication, outlives its listener otherwise)."""
        if self.proc is None:
            return
        sessions = descendants({self.proc.pid}) - {self.proc.pid}
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in sessions:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        self.proc = None

    def crash(self) -> None:
        """The host goes away mid-run: sshd and every connection it serves are killed at once
        (stopping only the listener would leave established connections working)."""
        if self.proc is None:
            return
        sessions = descendants({self.proc.pid}) - {self.proc.pid}
        for pid in (self.proc.pid, *sessions):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        self.proc.wait()
        self.proc = None


@dataclass
class SshdFleet:
    """N test hosts sharing a client key and a known_hosts file."""

    root: Path
    client_key: Path
    known_hosts: Path
    hosts: list[SshdHost] = field(default_factory=list)

    def by_name(self, name: str) -> SshdHost:
        return next(h for h in self.hosts if h.name == name)

    def stop(self) -> None:
        for host in self.hosts:
            host.stop()


def _wait_listening(address: str, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"sshd on {address}:{port} exited {proc.returncode}: {log.read_text()[-2000:]}"
            )
        try:
            with socket.create_connection((address, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError(f"sshd on {address}:{port} did not start listening within 10 s")


def _write_key(key: asyncssh.SSHKey, path: Path) -> None:
    key.write_private_key(str(path))
    os.chmod(path, 0o600)


@contextmanager
def sshd_fleet(
    root: Path,
    count: int,
    first_octet: int = FIRST_OCTET,
    chatty: tuple[str, ...] = (),
    max_startups: str | None = None,
) -> Iterator[SshdFleet]:
    """Start `count` sshd hosts under `root`; all are stopped on exit, whatever happens.

    Hosts named in `chatty` have a login shell that prints a greeting to stdout before every
    command (as a `.bashrc` with an `echo` does): bash sources $BASH_ENV for the commands sshd
    has it run, and sshd sets it for these hosts.

    `max_startups`: sshd's MaxStartups; by default sshd's own (10:30:100), which refuses
    handshakes beyond ten at once, as production hosts do."""
    if not Path(SSHD).exists():
        raise RuntimeError(f"{SSHD} is missing: apt-get install openssh-server (.ci/run does this)")
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege-separation dir
    root.mkdir(parents=True, exist_ok=True)
    client = asyncssh.generate_private_key("ssh-ed25519")
    client_key = root / "client_ed25519"
    _write_key(client, client_key)
    authorized = root / "authorized_keys"
    authorized.write_bytes(client.export_public_key())
    fleet = SshdFleet(root, client_key, root / "known_hosts")
    try:
        for i in range(count):
            name = f"node{i + 1}"
            _configure(fleet, name, f"127.0.0.{first_octet + i}", name in chatty, max_startups)
        for host in fleet.hosts:
            host.start()
        yield fleet
    finally:
        fleet.stop()


def _configure(
    fleet: SshdFleet, name: str, address: str, chatty: bool, max_startups: str | None
) -> SshdHost:
    """A host's key and sshd_config under the fleet's root, listed in its known_hosts (not
    started)."""
    workdir = fleet.root / f"host{name.removeprefix('node')}"
    workdir.mkdir(exist_ok=True)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    _write_key(host_key, workdir / "host_ed25519")
    public = host_key.export_public_key().decode().strip()
    port = free_port(address)
    env = "SetEnv SHLVL=1"
    if chatty:
        greeting = workdir / "chatty.sh"
        greeting.write_text(f"echo 'Welcome to {name}! Last login: yesterday'\n")
        env += f" BASH_ENV={greeting}"
    (workdir / "sshd_config").write_text(
        "\n".join(
            [
                f"ListenAddress {address}",
                f"Port {port}",
                f"HostKey {workdir / 'host_ed25519'}",
                f"PidFile {workdir / 'sshd.pid'}",
                f"AuthorizedKeysFile {fleet.root / 'authorized_keys'}",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "StrictModes no",
                "UsePAM no",
                "AllowTcpForwarding yes",
                *([f"MaxStartups {max_startups}"] if max_startups else []),
                "MaxSessions 100",
                "Subsystem sftp internal-sftp",
                # bash sources ~/.bashrc for commands it runs for sshd when SHLVL < 2.
                # Root's .bashrc on these machines runs `pyenv init` (about 100
                # processes, 0.1 s of CPU) per command; a fleet's service account
                # does not. SHLVL=1 skips it, so tests measure this tool, not dotfiles.
                env,
                "",
            ]
        )
    )
    host = SshdHost(name, address, port, workdir, public)
    fleet.hosts.append(host)
    _write_known_hosts(fleet)
    return host


def _write_known_hosts(fleet: SshdFleet) -> None:
    fleet.known_hosts.write_text(
        "".join(f"[{h.address}]:{h.port} {h.host_key_public}\n" for h in fleet.hosts)
    )


@contextmanager
def extra_host(fleet: SshdFleet, number: int) -> Iterator[SshdHost]:
    """One more host for a while (node{number} on 127.0.0.{10 + number}), in the fleet's
    inventories and known_hosts until it is stopped and removed on exit."""
    host = _configure(fleet, f"node{number}", f"127.0.0.{FIRST_OCTET - 1 + number}", False, None)
    try:
        host.start()
        yield host
    finally:
        host.stop()
        fleet.hosts.remove(host)
        _write_known_hosts(fleet)


def ssh_inventory_yaml(
    fleet: SshdFleet, python: str, extra: str = "", host_lines: dict[str, str] | None = None
) -> str:
    """An inventory naming every test host, connecting with the fleet's key and known_hosts.

    `host_lines` adds YAML lines (already indented under the host) to named hosts.
    """
    more = host_lines or {}
    hosts = "\n".join(
        f"  {h.name}:\n    address: {h.address}\n    port: {h.port}"
        + (f"\n{more[h.name]}" if h.name in more else "")
        for h in fleet.hosts
    )
    return (
        "defaults:\n"
        f"  user: {_user()}\n"
        f"  key_file: {fleet.client_key}\n"
        f"  known_hosts: {fleet.known_hosts}\n"
        f"  python: {python}\n"
        "  connect_timeout: 5\n"
        f"hosts:\n{hosts}\n{extra}"
    )


def _user() -> str:
    import getpass

    return getpass.getuser()


def cleanup(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
