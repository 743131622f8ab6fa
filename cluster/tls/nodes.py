"""The TLS files each node holds, what `plan` says about them and what `apply` writes.

Per cluster, in ROOT/tls/CLUSTER on every node (the same paths everywhere: Serve's
http_options are one for the cluster):
- node.pem: the node's certificate and key (mode 600): from the inventory's CA, one for the
  cluster, valid for each node's address and host name (the nodes of a Ray cluster already
  share its token, with which any of them runs code on all the others); or the host's own
  `tls: {cert_file, key_file}`;
- ca.pem: the CAs our clients on the node (the telemetry digest) trust: the inventory's, and
  `ca_file` when hosts bring their own certificates;
- clients.pem, with `client_ca` only: the CAs whose client certificates the proxy accepts,
  the operator's and the inventory's (ours present one from it);
- client.pem, with `client_ca` only: that certificate of ours and its key (mode 600).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from cluster.inventory import Host, Inventory, Target
from cluster.provision.layout import Layout
from cluster.provision.topology import RayCluster
from cluster.tls.authority import Authority, load, load_or_create
from cluster.tls.certificate import CertificateError, CertInfo, info, read_cert

NODE = "node.pem"
TRUST = "ca.pem"
CLIENTS = "clients.pem"
CLIENT = "client.pem"
PRIVATE = frozenset({NODE, CLIENT})


def serve_mode(target: Target) -> str:
    """How the target's proxies listen, as node.json records it (a change restarts Ray)."""
    if not target.tls.on:
        return "http"
    return "https+client-certs" if target.tls.client_ca else "https"


def http_options_tls(layout: Layout, cluster_id: str, target: Target) -> dict[str, str]:
    """The ssl_* entries of Serve's http_options (none with TLS off)."""
    if not target.tls.on:
        return {}
    node = layout.tls_file(cluster_id, NODE)
    options = {"ssl_certfile": node, "ssl_keyfile": node}
    if target.tls.client_ca:
        options["ssl_ca_certs"] = layout.tls_file(cluster_id, CLIENTS)
    return options


@dataclass(frozen=True)
class NodeFiles:
    """A node's TLS files that must be written, and why, in words for the plan."""

    names: tuple[str, ...]
    detail: str


def ca_exists(inventory: Inventory) -> bool:
    return (inventory.settings.tls_dir / "ca.key").exists()


def authority(inventory: Inventory) -> Authority:
    """The inventory's CA, made on first use (by `apply` only)."""
    return load_or_create(inventory.settings.tls_dir, inventory.path.name)


def existing_authority(inventory: Inventory) -> Authority | None:
    """The inventory's CA if it was made already (`plan` never makes one)."""
    return load(inventory.settings.tls_dir) if ca_exists(inventory) else None


def own_cert_problems(host: Host, target: Target) -> list[str]:
    """A host's own certificate that cannot serve: unreadable, not its key's, not for the
    address our clients check it against, or with no CA to check it against."""
    own = host.own_cert
    if own is None or not target.tls.on:
        return []
    where = host.origin("tls")
    if target.tls.ca_file is None:
        return [
            f"{where}: a host's own certificate needs the CA that signed it as ca_file under "
            f"the tls of target {target.name} (or defaults), so our clients can verify it"
        ]
    try:
        cert = x509.load_pem_x509_certificate(own.cert_file.read_bytes())
        key = serialization.load_pem_private_key(own.key_file.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        return [
            f"{where}: {own.cert_file.name} / {own.key_file.name}: cannot read ({type(exc).__name__})"
        ]
    if key.public_key() != cert.public_key():
        return [f"{where}: {own.key_file} is not the key of {own.cert_file}"]
    found = info(cert)
    if not found.covers(host.address):
        return [
            f"{where}: {own.cert_file} is not valid for {host.address} (it names "
            f"{', '.join(found.names) or 'nothing'}); our clients check the address"
        ]
    return []


def wanted_texts(
    inventory: Inventory, target: Target, ca_pem: bytes | None, client: bytes | None
) -> dict[str, str]:
    """ca.pem, clients.pem and client.pem as they must read (node.pem is per host)."""
    ca = (ca_pem or b"").decode()
    trust = ca + (target.tls.ca_file.read_text() if target.tls.ca_file else "")
    texts = {TRUST: trust}
    if target.tls.client_ca:
        texts[CLIENTS] = target.tls.client_ca.read_text() + ca
        texts[CLIENT] = (client or b"").decode()
    return texts


def sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def plan_node(
    inventory: Inventory,
    cluster: RayCluster,
    host: Host,
    files: dict[str, str | None],
    cert_pem: str | None,
    now: dt.datetime,
) -> NodeFiles | None:
    """What must be written on a node for its TLS to be as the inventory says; None if all is."""
    target = cluster.target
    if not target.tls.on:
        return None
    ca = existing_authority(inventory)
    client = _client_text(inventory) if target.tls.client_ca else None
    wanted = wanted_texts(inventory, target, ca.cert_pem if ca else None, client)
    names: list[str] = []
    why: list[str] = []
    node_why = _node_cert_why(host, ca, cert_pem, now)
    if node_why:
        names.append(NODE)
        why.append(node_why)
    for name, text in wanted.items():
        if ca is None or not text or files.get(name) != sha(text):
            names.append(name)
    if len(names) > len(why):
        why.append(f"{', '.join(n for n in names if n != NODE)} as the inventory says")
    return NodeFiles(tuple(names), "; ".join(why)) if names else None


def _client_text(inventory: Inventory) -> bytes | None:
    directory = inventory.settings.tls_dir
    try:
        return (directory / "client.pem").read_bytes() + (directory / "client.key").read_bytes()
    except OSError:
        return None


def _node_cert_why(
    host: Host, ca: Authority | None, cert_pem: str | None, now: dt.datetime
) -> str | None:
    if cert_pem is None:
        return f"certificate for {_names(host)}"
    try:
        current = read_cert(cert_pem.encode(), f"{host.name}: node.pem")
    except CertificateError:
        return "certificate (the node's is unreadable)"
    if host.own_cert is not None:
        try:
            own = read_cert(host.own_cert.cert_file.read_bytes(), str(host.own_cert.cert_file))
        except (OSError, CertificateError):
            return "the host's own certificate"
        return None if own.fingerprint == current.fingerprint else "the host's own certificate"
    if ca is None or not issued_by(cert_pem, ca):
        return f"certificate for {_names(host)} from the inventory's CA"
    if not (current.covers(host.address) and current.covers(host.name)):
        return f"certificate for {_names(host)} (the node's names {', '.join(current.names)})"
    if current.due(now):
        return f"renew the certificate (expires {_when(current)})"
    return None


def issued_by(cert_pem: str, ca: Authority) -> bool:
    try:
        x509.load_pem_x509_certificate(cert_pem.encode()).verify_directly_issued_by(ca.cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def node_texts(
    inventory: Inventory,
    cluster: RayCluster,
    host: Host,
    names: tuple[str, ...],
    issued: dict[str, str],
) -> dict[str, tuple[str, bool]]:
    """The files to write (name -> (text, private)), issuing what is needed; `apply` only.
    `issued` keeps the cluster's certificate once made, for its other nodes."""
    target = cluster.target
    ca = authority(inventory)
    client = None
    if target.tls.client_ca:
        cert_path, key_path = ca.client()
        client = cert_path.read_bytes() + key_path.read_bytes()
    wanted = wanted_texts(inventory, target, ca.cert_pem, client)
    out: dict[str, tuple[str, bool]] = {}
    for name in names:
        if name == NODE and host.own_cert is not None:
            out[name] = (_own_text(host), True)
        elif name == NODE:
            if cluster.id not in issued:
                pem = ca.issue_server(cluster.id, cluster_names(cluster))
                issued[cluster.id] = (pem.cert_pem + pem.key_pem).decode()
            out[name] = (issued[cluster.id], True)
        else:
            out[name] = (wanted[name], name in PRIVATE)
    return out


def _own_text(host: Host) -> str:
    assert host.own_cert is not None
    cert = host.own_cert.cert_file.read_text()
    key = host.own_cert.key_file.read_text()
    return cert + ("" if cert.endswith("\n") else "\n") + key


def cluster_names(cluster: RayCluster) -> list[str]:
    """What the cluster's certificate is valid for: each node's address and host name."""
    return list(dict.fromkeys(n for h in cluster.hosts for n in (h.address, h.name)))


def _names(host: Host) -> str:
    return host.address if host.address == host.name else f"{host.address} and {host.name}"


def _when(cert: CertInfo) -> str:
    return cert.not_after.strftime("%Y-%m-%d")


def trust_files(inventory: Inventory, target: Target) -> tuple[Path, ...]:
    """The CA files our clients on this machine verify a target's nodes against."""
    files = [inventory.settings.tls_dir / "ca.pem"]
    if target.tls.ca_file:
        files.append(target.tls.ca_file)
    return tuple(files)
