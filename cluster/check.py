"""`check`: probe hosts in parallel and report what each one can run."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from cluster.errors import TransportError
from cluster.events import Event
from cluster.fanout import fan_out
from cluster.inventory.model import Host
from cluster.remote import script
from cluster.transport.pool import Connections


@dataclass(frozen=True)
class HostFacts:
    """What a probe learned about one host."""

    hostname: str
    os: str
    os_release: str
    arch: str
    cpus: int | None
    load_1m: float | None
    memory_total: int | None
    memory_available: int | None
    disk_free: int | None
    python: str
    python_path: str
    ray: str | None
    onnxruntime: str | None


@dataclass(frozen=True)
class CheckStarted(Event):
    """Probing begins for these hosts."""

    hosts: tuple[str, ...]


@dataclass(frozen=True)
class HostChecked(Event):
    """One host answered its probe."""

    host: str
    endpoint: str
    facts: HostFacts
    duration_s: float


@dataclass(frozen=True)
class HostCheckFailed(Event):
    """One host could not be probed; `error` says why and what to do."""

    host: str
    endpoint: str
    error_type: str
    error: str
    duration_s: float


@dataclass(frozen=True)
class CheckFinished(Event):
    """Every host has been probed."""

    healthy: int
    failed: int
    duration_s: float


CheckEvent = CheckStarted | HostChecked | HostCheckFailed | CheckFinished


class ProbeFailed(TransportError):
    """The host is reachable but its Python could not run the probe."""


async def probe(connections: Connections, host: Host) -> HostFacts:
    """Facts about one host from a single remote command."""
    transport = await connections.get(host.name)
    # No explicit timeout: the transport applies the inventory's command_timeout.
    # -S: no `site` at start-up (two thirds of Python's start-up CPU with the usual .pth
    # files); the probe finds site-packages itself and imports `site` only if it must.
    result = await transport.run([host.python, "-S", "-c", script("probe")])
    if result.exit_status == 127:
        raise ProbeFailed(
            host.name, f"python not found at '{host.python}' (set python: in the inventory)"
        )
    if not result.ok:
        raise ProbeFailed(host.name, f"probe exited {result.exit_status}: {result.tail()}")
    try:
        return HostFacts(**json.loads(result.stdout))
    except (ValueError, TypeError) as exc:
        raise ProbeFailed(host.name, f"probe printed something unexpected: {exc}") from None


async def check_hosts(
    connections: Connections, hosts: Sequence[Host], *, concurrency: int | None = None
) -> AsyncIterator[CheckEvent]:
    """Probe every host at once (bounded), yielding one event per host as it finishes.

    Whatever goes wrong on one host, even an error nobody foresaw, becomes that host's
    HostCheckFailed (naming the exception), so the other hosts are still reported.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    limit = concurrency or connections.inventory.settings.concurrency
    yield CheckStarted(tuple(h.name for h in hosts))
    healthy = failed = 0

    async def timed(host: Host) -> _Probed:
        # Timed from when the host's turn comes, not from the start of the whole check.
        t0 = loop.time()
        try:
            facts: HostFacts | Exception = await probe(connections, host)
        except Exception as exc:  # noqa: BLE001 - reported as this host's failure below
            facts = exc
        return _Probed(facts, loop.time() - t0)

    async for host, outcome in fan_out(hosts, timed, limit=limit):
        probed = outcome if isinstance(outcome, _Probed) else _Probed(outcome, 0.0)
        if isinstance(probed.facts, HostFacts):
            healthy += 1
            yield HostChecked(host.name, host.endpoint, probed.facts, probed.took)
        else:
            failed += 1
            error_type, error = _describe(probed.facts)
            yield HostCheckFailed(host.name, host.endpoint, error_type, error, probed.took)
    yield CheckFinished(healthy, failed, loop.time() - start)


@dataclass(frozen=True)
class _Probed:
    """One host's probe outcome and how long that host took."""

    facts: HostFacts | Exception
    took: float


def _describe(exc: Exception) -> tuple[str, str]:
    """(error type, message) for a failed host; an unforeseen error says what it was."""
    if isinstance(exc, TransportError):
        return type(exc).__name__, exc.reason
    name = type(exc).__name__
    return name, f"unexpected {name} while probing: {str(exc) or repr(exc)}"
