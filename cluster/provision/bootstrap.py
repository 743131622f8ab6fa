"""Bootstrap: make the venv Ray runs in on a host, for hosts that have only a bare Python.

`python -m venv VENV`, then pip installs the requirements from the package index or, for
air-gapped edge nodes, only from a wheelhouse uploaded first (sha256-verified, `--no-index`).
A marker file in the venv records what was installed, so `plan` can tell whether the venv
is current without asking pip; it is written last, so a bootstrap cut short is redone.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

from cluster.errors import TransportError
from cluster.inventory import Host
from cluster.inventory.model import Bootstrap
from cluster.provision.layout import Layout
from cluster.provision.ray_node import write_file
from cluster.transport.base import Transport, local_manifest

MARKER = ".mlops-bootstrap.json"
PIP_TIMEOUT_S = 1800.0  # Ray's wheels are large; a slow mirror is not a failure


async def wheelhouse_digest(wheelhouse: Path | None) -> str | None:
    """One sha256 over the wheelhouse's files and their hashes: changes when any wheel does."""
    if wheelhouse is None:
        return None
    manifest, _ = await asyncio.to_thread(local_manifest, wheelhouse)
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def wanted_marker(bootstrap: Bootstrap, digest: str | None) -> dict[str, Any]:
    return {"requirements": list(bootstrap.requirements), "wheelhouse": digest}


async def read_marker(transport: Transport, bootstrap: Bootstrap) -> dict[str, Any] | None:
    """What the last bootstrap installed, or None when the venv was never (fully) made."""
    path = f"{bootstrap.venv}/{MARKER}"
    result = await transport.run(["sh", "-c", 'test -f "$1" && cat "$1" || true', "sh", path])
    if not result.ok or not result.stdout.strip():
        return None
    try:
        found = json.loads(result.stdout)
    except ValueError:
        return None  # a torn marker: bootstrap again
    return found if isinstance(found, dict) else None


def describe(bootstrap: Bootstrap) -> str:
    source = f"wheelhouse {bootstrap.wheelhouse}" if bootstrap.wheelhouse else "the package index"
    return f"venv {bootstrap.venv}: {len(bootstrap.requirements)} requirement(s) from {source}"


async def run_bootstrap(
    transport: Transport, host: Host, layout: Layout, digest: str | None
) -> str:
    """Create the venv and install into it; the marker goes last."""
    bootstrap = host.bootstrap
    assert bootstrap is not None
    pip_source: list[str] = []
    if bootstrap.wheelhouse is not None:
        remote_wheels = f"{layout.root}/wheelhouse"
        await transport.upload(bootstrap.wheelhouse, remote_wheels)
        pip_source = ["--no-index", "--find-links", remote_wheels]
    made = await transport.run([bootstrap.base_python, "-m", "venv", bootstrap.venv], timeout=300)
    if not made.ok:
        raise TransportError(host.name, f"cannot create the venv {bootstrap.venv}: {made.tail(4)}")
    pip = [bootstrap.python, "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
    installed = await transport.run(
        [*pip, *pip_source, *bootstrap.requirements], timeout=PIP_TIMEOUT_S
    )
    if not installed.ok:
        raise TransportError(
            host.name, f"pip install into {bootstrap.venv} failed: {installed.tail(6)}"
        )
    marker = json.dumps(wanted_marker(bootstrap, digest))
    await write_file(transport, f"{bootstrap.venv}/{MARKER}", marker)
    return describe(bootstrap)
