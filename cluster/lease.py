"""Leases: one operator (or CI job) at a time changes an app on a cluster.

swap, rollback, promote, abort, apply and destroy hold a lease per app on each cluster head
they change (a file under ROOT/leases/, see cluster/remote/lease.py). A second operator gets
LeaseHeld naming the holder. A lease expires LEASE_TTL_S after its last renewal, so a dead
operator blocks no one for long; while the operation runs it is renewed every RENEW_S.
`force` takes over a lease that has not expired (an operator known to be gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from cluster.errors import MlopsError, TransportError
from cluster.fanout import fan_out
from cluster.inventory import Host
from cluster.remote import script
from cluster.transport import Connections

log = logging.getLogger("mlops_tui.lease")
LEASE_TTL_S = 300.0
RENEW_S = 60.0
RELEASE_TIMEOUT_S = 15.0


class LeaseHeld(MlopsError):
    """Another operator holds the lease; the message names who, where, what and since when."""


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds (or held) a lease, as the lease file says."""

    who: str
    machine: str
    command: str
    since: float
    expires: float
    pid: int | None = None
    phase: str = ""  # where the operation last said it was (a swap's steps)

    @classmethod
    def of(cls, record: dict[str, Any]) -> LeaseHolder:
        pid = record.get("pid")
        return cls(
            str(record.get("who", "?")),
            str(record.get("machine", "?")),
            str(record.get("command", "?")),
            float(record.get("since", 0) or 0),
            float(record.get("expires", 0) or 0),
            pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
            str(record.get("phase") or ""),
        )

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.since))
        return f"{self.who}@{self.machine} running `{self.command}` since {since}"

    @property
    def gone(self) -> bool:
        """Its process ran on this machine and no longer exists (killed)."""
        return _abandoned({"machine": self.machine, "pid": self.pid})


@dataclass(frozen=True)
class LeaseSpot:
    """One lease: an app on one cluster, kept on that cluster's head."""

    app: str
    cluster: str
    head: Host


class Leases:
    """Holds every lease of one operation; `async with` acquires all or none.

    On entry: all acquired, or LeaseHeld (those already acquired are released). `taken_over`
    lists the leases force (or expiry) took from someone, with what to say to the operator. On exit,
    released, even when the operation failed or was cancelled.
    """

    def __init__(
        self,
        connections: Connections,
        spots: Sequence[LeaseSpot],
        command: str,
        *,
        force: bool = False,
        ttl_s: float = LEASE_TTL_S,
        skip_unreachable: bool = False,
    ) -> None:
        self.connections = connections
        self.spots = list(spots)
        self.force = force
        self.ttl_s = ttl_s
        self.id = secrets.token_hex(16)
        self.holder = {
            "id": self.id,
            "who": getpass.getuser(),
            "machine": socket.gethostname(),
            "pid": os.getpid(),
            "command": command,
        }
        self.taken_over: list[tuple[LeaseSpot, str]] = []
        # With skip_unreachable: clusters whose head could not be asked, and why. The
        # operation leaves them alone (apply and destroy go on with the others).
        self.skip_unreachable = skip_unreachable
        self.unreachable: dict[str, str] = {}
        self._held: list[LeaseSpot] = []
        self._renewer: asyncio.Task[None] | None = None
        self._phases: dict[str, str] = {}  # cluster -> phase still to write (mark)
        self._marker: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Leases:
        refused: list[str] = []

        async def take(spot: LeaseSpot) -> None:
            request = {"holder": self.holder, "ttl": self.ttl_s, "force": self.force}
            answer = await self._call(spot, "acquire", request)
            why = None
            found = answer.get("holder") or {}
            if not answer.get("ok") and _abandoned(found):
                # Its process on this very machine is gone (killed): no one to wait for.
                request = {"holder": self.holder, "ttl": self.ttl_s, "only_if": found.get("id")}
                answer = await self._call(spot, "acquire", request)
                why = f"taken over: its process {found.get('pid')} on this machine is gone"
            if answer.get("ok"):
                self._held.append(spot)
                if answer.get("took_over"):
                    old = LeaseHolder.of(answer["took_over"])
                    why = why or ("expired" if old.expires < time.time() else "taken with --force")
                    self.taken_over.append(
                        (spot, f"{spot.app} on {spot.cluster}: lease of {old.describe()} {why}")
                    )
            else:
                holder = LeaseHolder.of(answer.get("holder") or {})
                refused.append(f"{spot.app} on {spot.cluster} is held by {holder.describe()}")

        problems: list[str] = []
        async for spot, outcome in fan_out(self.spots, take, limit=16):
            if isinstance(outcome, TransportError) and self.skip_unreachable:
                self.unreachable[spot.cluster] = outcome.reason
            elif isinstance(outcome, Exception):
                problems.append(f"{spot.cluster}: {outcome}")
        if refused or problems:
            await self._release_all()
            if refused:
                raise LeaseHeld(
                    "; ".join(refused) + ". Wait for it to finish, or, if that operator is "
                    "gone, take the lease over with --force"
                )
            raise TransportError(
                self.spots[0].head.name, "cannot take the lease: " + "; ".join(problems)
            )
        for spot, said in self.taken_over:
            log.warning("%s: %s", spot.head.name, said)
        log.info("leases held for `%s`: %s", self.holder["command"],
                 ", ".join(f"{s.app} on {s.cluster}" for s in self._held))  # fmt: skip
        self._renewer = asyncio.create_task(self._renew_forever())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in (self._renewer, self._marker):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        # Shielded: a cancelled operation still gives its leases back.
        await asyncio.shield(self._release_all())

    def mark(self, cluster: str, phase: str) -> None:
        """Write where the operation is into its lease on `cluster`, for `status` and the
        next operator to read. In the background: the operation never waits for it (nor can
        a cancellation land there), and a host briefly away only misses a phase."""
        if not any(spot.cluster == cluster for spot in self._held):
            return
        self._phases[cluster] = phase  # the latest phase per cluster is the one that counts
        if self._marker is None or self._marker.done():
            self._marker = asyncio.create_task(self._write_phases())

    async def _write_phases(self) -> None:
        while self._phases:
            cluster = next(iter(self._phases))
            phase = self._phases.pop(cluster)
            for spot in [s for s in self._held if s.cluster == cluster]:
                try:
                    await asyncio.wait_for(
                        self._call(spot, "phase", {"id": self.id, "phase": phase}),
                        RELEASE_TIMEOUT_S,
                    )
                except (MlopsError, TimeoutError) as exc:
                    log.info("lease of %s on %s: phase not written (%s)", spot.app, cluster, exc)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(RENEW_S)
            for spot in list(self._held):
                try:
                    await self._call(spot, "renew", {"id": self.id, "ttl": self.ttl_s})
                except MlopsError:
                    continue  # a host briefly away: the next renewal tries again

    async def _release_all(self) -> None:
        async def give(spot: LeaseSpot) -> None:
            await asyncio.wait_for(self._call(spot, "release", {"id": self.id}), RELEASE_TIMEOUT_S)

        held, self._held = self._held, []
        async for spot, outcome in fan_out(held, give, limit=16):
            # A lease not given back expires by itself.
            log.info("lease of %s on %s given back%s", spot.app, spot.cluster,
                     f" (not: {outcome}; it expires by itself)" if outcome is not None else "")  # fmt: skip

    async def _call(self, spot: LeaseSpot, action: str, request: dict[str, Any]) -> dict[str, Any]:
        host = spot.head
        transport = await self.connections.get(host.name)
        result = await transport.run(
            [host.script_python, "-c", script("lease"), action, host.remote_dir, spot.app],
            input=json.dumps(request),
            timeout=60,
        )
        if not result.ok:
            raise TransportError(host.name, f"lease {action} failed: {result.tail()}")
        try:
            answer = json.loads(result.stdout)
        except ValueError:
            raise TransportError(
                host.name, f"lease {action} gave unreadable output: {result.stdout[:200]!r}"
            ) from None
        return answer if isinstance(answer, dict) else {}


def _abandoned(record: dict[str, Any]) -> bool:
    """A lease whose holder ran on this machine in a process that no longer exists."""
    pid = record.get("pid")
    if record.get("machine") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


E = TypeVar("E")


async def holding(
    leases: Leases,
    note: Callable[[LeaseSpot, str], E],
    events: AsyncGenerator[E, None],
    outcome: Callable[[E], bool] = lambda _: False,
) -> AsyncGenerator[E, None]:
    """`events` with `leases` held: each lease taken over is said first (as `note` makes it),
    every event passes at once, and the `outcome` event (the last) comes after the leases are
    given back, so a consumer that stops reading at the outcome leaves no lease behind."""
    held: list[E] = []
    async with leases:
        for spot, text in leases.taken_over:
            yield note(spot, text)
        async with contextlib.aclosing(events) as inner:
            async for event in inner:
                if outcome(event):
                    held.append(event)
                else:
                    yield event
    for event in held:
        yield event
