"""Serve's proxy hook, on a real uvicorn HTTPS server as Serve 2.60 starts it.

Serve passes `ssl_keyfile`, `ssl_certfile` and `ssl_ca_certs` to uvicorn.Config and nothing
else; these tests start uvicorn the same way, with the hook installed as Ray would (the
callback named by RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH, run before the server starts).
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
import uvicorn.config

from cluster.tls.authority import Authority, load_or_create
from cluster.tls.certificate import read_cert
from serving import tls_proxy


async def _app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@dataclass
class Server:
    port: int
    node_pem: Path
    ca: Authority
    tmp: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_pair(ca: Authority, path: Path) -> None:
    issued = ca.issue_server("node-1", ["127.0.0.1", "node-1"])
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(issued.cert_pem + issued.key_pem)
    os.replace(tmp, path)  # as `apply` writes it: one file, moved into place


def _serve(tmp: Path, client_ca: Path | None) -> Iterator[Server]:
    ca = load_or_create(tmp / "ca", "test")
    node_pem = tmp / "node.pem"
    _write_pair(ca, node_pem)
    port = _free_port()
    assert tls_proxy.setup() == []
    config = uvicorn.Config(
        _app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
        ssl_keyfile=str(node_pem), ssl_certfile=str(node_pem),
        ssl_ca_certs=str(client_ca) if client_ca else None,
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        thread.join(0.05)
    assert server.started
    try:
        yield Server(port, node_pem, ca, tmp)
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uvicorn.config, "create_ssl_context", uvicorn.config.create_ssl_context)
    monkeypatch.setattr(tls_proxy, "RELOAD_EVERY_S", 0.2)


@pytest.fixture
def server(tmp_path: Path, patched: None) -> Iterator[Server]:
    yield from _serve(tmp_path, None)


def _context(ca: Path, client: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if client:
        context.load_cert_chain(*client)
    return context


def _peer_fingerprint(server: Server) -> str:
    context = _context(server.ca.cert_path)
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return read_cert(ssl.DER_cert_to_PEM_cert(der).encode(), "peer").fingerprint


def test_https_verifies_against_the_ca_and_plain_http_is_refused(server: Server) -> None:
    ok = httpx.get(server.url, verify=_context(server.ca.cert_path))
    assert ok.status_code == 200 and ok.text == "ok"
    with pytest.raises(httpx.HTTPError):
        httpx.get(server.url.replace("https", "http"), timeout=5)
    other = load_or_create(server.tmp / "other", "someone else")
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(server.url, verify=_context(other.cert_path))


def test_with_a_client_ca_a_client_certificate_is_required(tmp_path: Path, patched: None) -> None:
    issuer = load_or_create(tmp_path / "clients", "client CA")
    for server in _serve(tmp_path, issuer.cert_path):
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url, verify=_context(server.ca.cert_path), timeout=5)
        stranger = load_or_create(tmp_path / "stranger", "x").client()
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url, verify=_context(server.ca.cert_path, stranger), timeout=5)
        # A server certificate of the right CA is not a client's (no clientAuth usage).
        as_server = issuer.issue_server("someone", ["127.0.0.9"])
        (tmp_path / "server.pem").write_bytes(as_server.cert_pem + as_server.key_pem)
        pair = (tmp_path / "server.pem", tmp_path / "server.pem")
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url, verify=_context(server.ca.cert_path, pair), timeout=5)
        good = _context(server.ca.cert_path, issuer.client())
        assert httpx.get(server.url, verify=good).status_code == 200


def test_a_renewed_certificate_is_served_without_a_failed_request(server: Server) -> None:
    before = _peer_fingerprint(server)
    failed = sent = 0

    async def load(stop: asyncio.Event) -> None:
        nonlocal failed, sent
        async with httpx.AsyncClient(verify=_context(server.ca.cert_path)) as client:
            while not stop.is_set():
                sent += 1
                try:
                    if (await client.get(server.url)).status_code != 200:
                        failed += 1
                except httpx.HTTPError:
                    failed += 1
            # new connections too, not only the kept-alive ones
        for _ in range(20):
            async with httpx.AsyncClient(verify=_context(server.ca.cert_path)) as fresh:
                sent += 1
                failed += (await fresh.get(server.url)).status_code != 200

    async def run() -> str:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(load(stop)) for _ in range(4)]
        await asyncio.sleep(0.3)
        _write_pair(server.ca, server.node_pem)
        after = before
        for _ in range(50):
            await asyncio.sleep(0.1)
            after = await asyncio.to_thread(_peer_fingerprint, server)
            if after != before:
                break
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.gather(*tasks)
        return after

    after = asyncio.run(run())
    assert after != before
    assert after == read_cert(server.node_pem.read_bytes(), "node").fingerprint
    assert sent > 50 and failed == 0
