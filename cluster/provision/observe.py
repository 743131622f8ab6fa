"""What a host runs now, as seen over SSH, and what its Serve runs, as seen over the REST API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from cluster.errors import TransportError
from cluster.inventory import Host
from cluster.lease import LeaseHolder
from cluster.provision.layout import Layout
from cluster.provision.ray_node import read_secret_file
from cluster.provision.topology import RayCluster
from cluster.remote import script
from cluster.serve.api import ServeApi
from cluster.transport import Connections


@dataclass(frozen=True)
class ObservedTls:
    """A cluster's TLS files on a host: sha256 by file name, and the node's certificate."""

    files: dict[str, str | None]
    cert_pem: str | None


@dataclass(frozen=True)
class HostState:
    """Our footprint on one host."""

    host: str
    layout: Layout
    bundle: str | None
    models: dict[str, str | None]
    ray_pids: int
    ray_node: dict[str, Any] | None
    keys: dict[str, str | None] = field(default_factory=dict)  # cluster -> sha256 of its keys
    leftovers: int = 0  # files an interrupted run left, which the next apply removes
    taken: tuple[str, ...] = ()  # Ray ports another program holds, in words (Ray not running)
    leases: dict[str, LeaseHolder] = field(default_factory=dict)  # app -> its lease here
    tls: dict[str, ObservedTls] = field(default_factory=dict)  # cluster -> its TLS files here

    @property
    def ray_running(self) -> bool:
        return self.ray_pids > 0


async def observe_host(connections: Connections, host: Host) -> HostState:
    transport = await connections.get(host.name)
    ports = [
        f"port={host.ray.gcs}@{host.address}",
        f"dashboard_port={host.ray.dashboard}@{host.address}",
        # The metrics exporter and the Serve proxy listen on every interface.
        f"metrics_port={host.ray.metrics}@0.0.0.0",
        f"serve_port={host.ray.serve_http}@0.0.0.0",
    ]
    result = await transport.run(
        [host.script_python, "-c", script("observe"), host.remote_dir, host.name, *ports],
        timeout=60,
    )
    if result.exit_status == 127:
        raise TransportError(
            host.name, f"python not found at '{host.script_python}' (set python: in the inventory)"
        )
    if not result.ok:
        raise TransportError(host.name, f"observing the host failed: {result.tail()}")
    try:
        data = json.loads(result.stdout)
        return HostState(
            host.name,
            Layout(data["root"]),
            data["bundle"],
            data["models"],
            int(data["ray"]["pids"]),
            data["ray"]["node"],
            dict(data.get("keys") or {}),
            int(data.get("leftovers") or 0),
            tuple(
                f"{t['name']} {t['port']} on {t['address']} is in use ({t['error']})"
                for t in data.get("taken") or []
            ),
            {
                str(app): LeaseHolder.of(record)
                for app, record in (data.get("leases") or {}).items()
                if isinstance(record, dict)
            },
            {
                str(cluster): ObservedTls(dict(found.get("files") or {}), found.get("cert"))
                for cluster, found in (data.get("tls") or {}).items()
                if isinstance(found, dict)
            },
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise TransportError(
            host.name, f"observing the host gave unreadable output ({exc}): {result.stdout[:200]!r}"
        ) from None


@asynccontextmanager
async def serve_api(
    connections: Connections, cluster: RayCluster, layout: Layout
) -> AsyncIterator[ServeApi]:
    """The head's Serve REST API through an SSH forward, authenticated with the cluster's token."""
    transport = await connections.get(cluster.head.name)
    token = await read_secret_file(transport, layout.token_file(cluster.id))
    async with transport.forward(cluster.head.address, cluster.head.ray.dashboard) as (host, port):
        api = ServeApi(f"http://{host}:{port}", token, timeout=30)
        try:
            yield api
        finally:
            await api.aclose()
