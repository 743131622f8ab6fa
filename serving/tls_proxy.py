"""Two things Serve 2.60's HTTPS proxy does not do, added from inside the proxy process.

Serve hands `http_options.ssl_*` to uvicorn, which (a) loads `ssl_ca_certs` without asking
clients for a certificate (uvicorn's `ssl_cert_reqs` defaults to CERT_NONE and Serve never
sets it), so `client_ca` alone would require nothing; and (b) reads the certificate once, so
a renewed one would need a proxy restart, which drops requests.

`ray start` on our nodes sets RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH to `setup` here,
Serve's own hook run in each proxy before its server starts. It wraps uvicorn's
`create_ssl_context` so that a CA file means client certificates are required, and re-reads
the node's certificate when `apply` replaces it: the same SSLContext takes the new pair, and
only connections made after that see it (no connection is dropped). The check runs on the
proxy's event loop, the thread that does the handshakes, so a context is never changed
while a handshake reads it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import ssl
from collections.abc import Callable
from typing import Any

log = logging.getLogger("ray.serve")
RELOAD_EVERY_S = 1.0  # two stat() calls a second: nothing beside a proxy's work


def setup() -> list[Any]:
    """Serve's proxy callback: patch uvicorn (once); no middlewares."""
    import uvicorn.config

    if not getattr(uvicorn.config.create_ssl_context, "_mlops_tui", False):
        uvicorn.config.create_ssl_context = _wrap(uvicorn.config.create_ssl_context)
    return []


def _wrap(create: Callable[..., ssl.SSLContext]) -> Callable[..., ssl.SSLContext]:
    signature = inspect.signature(create)

    def create_ssl_context(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        given = signature.bind(*args, **kwargs).arguments
        context = create(*args, **kwargs)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if given.get("ca_certs"):
            context.verify_mode = ssl.CERT_REQUIRED
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.warning("tls: no event loop; a renewed certificate is read at the next restart")
            return context
        keyfile = given.get("keyfile")
        reloader = Reloader(
            context,
            str(given["certfile"]),
            str(keyfile) if keyfile else None,
            given.get("password"),
        )
        reloader.start(loop)
        return context

    create_ssl_context._mlops_tui = True  # type: ignore[attr-defined]
    return create_ssl_context


class Reloader:
    """Loads the certificate and key again into the same context when a file changes."""

    def __init__(
        self, context: ssl.SSLContext, certfile: str, keyfile: str | None, password: Any
    ) -> None:
        self.context = context
        self.files = [certfile] + ([keyfile] if keyfile and keyfile != certfile else [])
        self.keyfile = keyfile
        self.password = (lambda: password) if password else None
        self.seen = self._stamp()

    def _stamp(self) -> tuple[tuple[int, int], ...]:
        stamps = []
        for path in self.files:
            try:
                st = os.stat(path)
                stamps.append((st.st_ino, st.st_mtime_ns))
            except OSError:
                stamps.append((0, 0))
        return tuple(stamps)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.call_later(RELOAD_EVERY_S, self.check, loop)

    def check(self, loop: asyncio.AbstractEventLoop) -> None:
        """One look at the files, then the next one armed (whatever this one found)."""
        try:
            stamp = self._stamp()
            if stamp != self.seen:
                # A pair caught between two writes does not load (its key does not match):
                # the old pair stays and the next look tries again.
                self.context.load_cert_chain(self.files[0], self.keyfile, self.password)
                self.seen = stamp
                log.info("tls: loaded the renewed certificate %s", self.files[0])
        except (OSError, ssl.SSLError) as exc:
            log.warning("tls: kept the current certificate; %s: %s", self.files[0], exc)
        finally:
            self.start(loop)
