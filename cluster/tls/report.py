"""`tls show`: the inventory's CA and each node's certificate, as the nodes hold them now."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from cluster.errors import MlopsError, TransportError
from cluster.fanout import fan_out
from cluster.inventory import Host, Inventory
from cluster.provision.observe import observe_host
from cluster.provision.topology import RayCluster, clusters_of, selected_targets
from cluster.tls.authority import Authority
from cluster.tls.certificate import CertificateError, CertInfo, read_cert
from cluster.tls.nodes import existing_authority, issued_by, serve_mode
from cluster.transport import Connections


@dataclass(frozen=True)
class CaReport:
    """The inventory's CA: where it is (the path to give clients), whose it is, how long."""

    cert_file: str
    exists: bool
    fingerprint: str | None = None
    not_after: dt.datetime | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "cert_file": self.cert_file,
            "exists": self.exists,
            "fingerprint": self.fingerprint,
            "not_after": self.not_after.isoformat() if self.not_after else None,
            "error": self.error,
        }


@dataclass(frozen=True)
class NodeCertReport:
    """One node's certificate as it holds it (or why it cannot be read)."""

    target: str
    cluster: str
    host: str
    address: str
    mode: str  # http | https | https+client-certs
    cert: CertInfo | None = None
    issued_by_ca: bool | None = None  # None: the host's own certificate, or no CA yet
    error: str | None = None

    def renew_due(self, now: dt.datetime) -> bool:
        return self.cert is not None and self.cert.due(now)

    def to_dict(self, now: dt.datetime) -> dict[str, Any]:
        cert = self.cert
        return {
            "target": self.target,
            "cluster": self.cluster,
            "host": self.host,
            "address": self.address,
            "mode": self.mode,
            "not_after": cert.not_after.isoformat() if cert else None,
            "days_left": round(cert.days_left(now), 1) if cert else None,
            "renew_due": self.renew_due(now),
            "names": list(cert.names) if cert else [],
            "fingerprint": cert.fingerprint if cert else None,
            "issued_by_ca": self.issued_by_ca,
            "error": self.error,
        }


def ca_report(inventory: Inventory) -> tuple[CaReport, Authority | None]:
    path = str(inventory.settings.tls_dir / "ca.pem")
    try:
        ca = existing_authority(inventory)
    except CertificateError as exc:
        return CaReport(path, True, error=str(exc)), None
    if ca is None:
        return CaReport(path, False, error="not made yet: `mlops-tui apply` makes it"), None
    found = ca.info
    return CaReport(path, True, found.fingerprint, found.not_after), ca


async def node_certs(
    connections: Connections, targets: list[str] | None, ca: Authority | None
) -> AsyncIterator[NodeCertReport]:
    """Each node's certificate, read over SSH at once on every node (bounded)."""
    inventory = connections.inventory
    nodes: list[tuple[RayCluster, Host]] = [
        (cluster, host)
        for target in selected_targets(inventory, targets)
        for cluster in clusters_of(inventory, target)
        for host in cluster.hosts
    ]

    async def one(pair: tuple[RayCluster, Host]) -> NodeCertReport:
        cluster, host = pair
        base = NodeCertReport(
            cluster.target.name, cluster.id, host.name, host.address, serve_mode(cluster.target)
        )
        state = await observe_host(connections, host)
        observed = state.tls.get(cluster.id)
        if observed is None or observed.cert_pem is None:
            return _with(base, error="no certificate on the node (`apply` ships one)")
        cert = read_cert(observed.cert_pem.encode(), f"{host.name}: node.pem")
        issued = None
        if ca is not None and host.own_cert is None:
            issued = issued_by(observed.cert_pem, ca)
        return _with(base, cert=cert, issued_by_ca=issued)

    async for pair, outcome in fan_out(nodes, one, limit=inventory.settings.concurrency):
        if isinstance(outcome, NodeCertReport):
            yield outcome
            continue
        cluster, host = pair
        base = NodeCertReport(
            cluster.target.name, cluster.id, host.name, host.address, serve_mode(cluster.target)
        )
        if isinstance(outcome, TransportError):
            yield _with(base, error=outcome.reason)
        elif isinstance(outcome, MlopsError):
            yield _with(base, error=str(outcome))
        else:
            raise outcome


def _with(base: NodeCertReport, **changes: Any) -> NodeCertReport:
    return replace(base, **changes)
