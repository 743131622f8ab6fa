"""How our clients on the operator's machine reach a Serve port: HTTPS verified against the
inventory's CA (and `ca_file`), presenting our client certificate where nodes ask for one.

Our requests travel through SSH forwards (127.0.0.1:PORT here), so the name checked in the
node's certificate is given per request (httpx's `sni_hostname`): the node's address, as a
client connecting to it directly would check. Verification is never turned off.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from cluster.inventory import Host, Inventory, Target
from cluster.tls.authority import CLIENT_CERT, CLIENT_KEY
from cluster.tls.certificate import CertificateError
from cluster.tls.nodes import trust_files
from cluster.transport import Connections


@dataclass(frozen=True)
class ClientTls:
    """What a client needs to speak to one target's nodes (None where TLS is off)."""

    context: ssl.SSLContext

    def options(self, name: str) -> dict[str, Any]:
        """httpx.AsyncClient options: verify with our CAs, check the certificate for `name`
        (a node's address) whatever address the request goes to (a forward's)."""
        server_name = name

        async def set_name(request: httpx.Request) -> None:
            request.extensions["sni_hostname"] = server_name

        return {"verify": self.context, "event_hooks": {"request": [set_name]}}


def client_tls(inventory: Inventory, target: Target) -> ClientTls | None:
    """An SSL context for the target's nodes; a clear error when the CA is not there yet."""
    if not target.tls.on:
        return None
    # Only the inventory's CAs, not the system's: a node's certificate is ours or the
    # operator's. PROTOCOL_TLS_CLIENT checks the chain and the name.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    for path in trust_files(inventory, target):
        try:
            context.load_verify_locations(cafile=str(path))
        except FileNotFoundError:
            raise CertificateError(
                f"{path}: not found; target {target.name} has TLS on and its CA is made by "
                "`mlops-tui apply`"
            ) from None
        except (OSError, ssl.SSLError) as exc:
            raise CertificateError(f"{path}: cannot load as a CA file ({exc})") from None
    if target.tls.client_ca:
        directory = inventory.settings.tls_dir
        try:
            context.load_cert_chain(str(directory / CLIENT_CERT), str(directory / CLIENT_KEY))
        except (OSError, ssl.SSLError) as exc:
            raise CertificateError(
                f"{directory / CLIENT_CERT}: our client certificate cannot be loaded ({exc}); "
                "`mlops-tui apply` issues it"
            ) from None
    return ClientTls(context)


@asynccontextmanager
async def serve_client(
    connections: Connections,
    host: Host,
    target: Target,
    *,
    via: Host | None = None,
    **options: Any,
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client for `host`'s Serve port, through an SSH forward from `via` (the host
    itself by default), over HTTPS when the target has TLS on."""
    transport = await connections.get((via or host).name)
    tls = client_tls(connections.inventory, target)
    async with transport.forward(host.address, host.ray.serve_http) as (address, port):
        if tls is None:
            async with httpx.AsyncClient(base_url=f"http://{address}:{port}", **options) as client:
                yield client
            return
        async with httpx.AsyncClient(
            base_url=f"https://{address}:{port}", **tls.options(host.address), **options
        ) as client:
            yield client
