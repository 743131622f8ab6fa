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
    result = await transport.run([host.python, "-c", script("probe")], timeout=30)
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
    """Probe every host at once (bounded), yielding one event per host as it finishes."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    limit = concurrency or connections.inventory.settings.concurrency
    yield CheckStarted(tuple(h.name for h in hosts))
    healthy = failed = 0

    async def timed(host: Host) -> tuple[HostFacts, float]:
        t0 = loop.time()
        return await probe(connections, host), loop.time() - t0

    async for host, outcome in fan_out(hosts, timed, limit=limit):
        if isinstance(outcome, TransportError):
            failed += 1
            yield HostCheckFailed(
                host.name,
                host.endpoint,
                type(outcome).__name__,
                outcome.reason,
                loop.time() - start,
            )
        elif isinstance(outcome, Exception):
            raise outcome
        else:
            healthy += 1
            facts, took = outcome
            yield HostChecked(host.name, host.endpoint, facts, took)
    yield CheckFinished(healthy, failed, loop.time() - start)
