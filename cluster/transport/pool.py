"""Connections for one run: opened on first use, shared by every step, closed together."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TYPE_CHECKING

from cluster.errors import HostUnreachable, TransportError
from cluster.inventory.model import Inventory
from cluster.transport.base import Transport
from cluster.transport.local import LocalTransport

if TYPE_CHECKING:
    from cluster.transport.ssh import SshTransport


class Connections:
    """At most one transport per host; jump hosts are connected once and tunnelled through.

    A failed connection is remembered for the run, so twenty steps on a dead host fail
    fast instead of waiting for twenty connect timeouts.
    """

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self._open: dict[str, Transport] = {}
        self._failed: dict[str, TransportError] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def __aenter__(self) -> Connections:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            await self.aclose()
            return
        try:
            await self.aclose()
        except TransportError as close_error:  # never hide the error that ended the run
            exc.add_note(f"while handling it, {close_error}")
            for note in getattr(close_error, "__notes__", ()):
                exc.add_note(note)

    async def get(self, name: str) -> Transport:
        """The host's open transport; a connection that has died (host or sshd restarted) is
        replaced by a new one, so long-running watchers recover by themselves."""
        if name in self._open and self._open[name].alive:
            return self._open[name]
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            if name in self._open:
                if self._open[name].alive:
                    return self._open[name]
                await self._open.pop(name).close()
            if name in self._failed:
                raise self._failed[name]
            try:
                transport = await self._connect(name)
            except TransportError as exc:
                self._failed[name] = exc
                raise
            self._open[name] = transport
            return transport

    async def _connect(self, name: str) -> Transport:
        host = self.inventory.hosts[name]
        settings = self.inventory.settings
        if host.connection == "local":
            return LocalTransport(host, settings.command_timeout)
        # asyncssh takes a sixth of a second to import: only runs that reach a host over SSH
        # pay for it (the console paints its first screen without it).
        from cluster.transport.ssh import SshTransport, open_ssh

        tunnel: SshTransport | None = None
        if host.via is not None:
            try:
                jump = await self.get(host.via)
            except TransportError as exc:
                raise HostUnreachable(
                    name, f"jump host {host.via} is unreachable: {exc.reason}"
                ) from None
            assert isinstance(jump, SshTransport)
            tunnel = jump
        return await open_ssh(
            host,
            connect_timeout=settings.connect_timeout,
            keepalive_interval=settings.keepalive_interval,
            command_timeout=settings.command_timeout,
            tunnel=tunnel,
        )

    def forget(self, name: str) -> None:
        """Allow a new connection attempt to a host that failed earlier in this run, and to
        the jump hosts on its way (their failure would fail it again)."""
        seen: set[str] = set()
        while name and name not in seen:
            seen.add(name)
            self._failed.pop(name, None)
            name = self.inventory.hosts[name].via or "" if name in self.inventory.hosts else ""

    async def aclose(self) -> None:
        """Close every connection, each tunnelled one before the jump hosts it rides on.

        One failing close does not keep the others open: all are closed, then the first
        failure is raised as a TransportError, with any others noted on it.
        """
        order = sorted(self._open.values(), key=lambda t: self._hops(t.host.name), reverse=True)
        self._open.clear()
        failures: list[TransportError] = []
        for transport in order:
            try:
                await transport.close()
            except Exception as exc:  # noqa: BLE001 - the rest still get closed; raised below
                failures.append(
                    TransportError(
                        transport.host.name,
                        f"closing the connection failed: {type(exc).__name__}: {exc}",
                    )
                )
                failures[-1].__cause__ = exc
        if failures:
            first = failures[0]
            for other in failures[1:]:
                first.add_note(f"also: {other}")
            raise first

    def _hops(self, name: str) -> int:
        """How many jump hosts lie between this machine and `name`."""
        hosts = self.inventory.hosts
        hops, cur = 0, hosts.get(name)
        while cur is not None and cur.via is not None and hops <= len(hosts):
            hops += 1
            cur = hosts.get(cur.via)
        return hops
