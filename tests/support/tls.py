"""Test clients that trust an inventory's CA, as an operator's clients given its ca.pem.

httpx (and curl, and Python's ssl) read SSL_CERT_FILE: set to the CA file, every plain
`httpx.get(...)` of a test verifies the nodes' certificates against it (never turned off).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cluster.tls.authority import load_or_create


@contextmanager
def trusting_ca(tls_dir: Path, *, make: bool = True) -> Iterator[Path]:
    """The inventory's CA, trusted by test clients until the block ends; its certificate's
    path. `make`: made here (else by the first `apply`, before any client connects)."""
    cert = load_or_create(tls_dir, "inventory.yaml").cert_path if make else tls_dir / "ca.pem"
    before = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = str(cert)
    try:
        yield cert
    finally:
        if before is None:
            os.environ.pop("SSL_CERT_FILE", None)
        else:
            os.environ["SSL_CERT_FILE"] = before
