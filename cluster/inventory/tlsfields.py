"""The `tls:` settings: a target's (or `defaults`') policy, and a host's own certificate."""

from __future__ import annotations

from pathlib import Path

import yaml

from cluster.inventory.model import OwnCert, Tls
from cluster.inventory.yamlread import Reader

POLICY_KEYS = ("client_ca", "ca_file")
OWN_CERT_KEYS = ("cert_file", "key_file")
_POLICY_FORMS = "auto, off, or a mapping of client_ca (mutual TLS) and ca_file"


def read_policy(reader: Reader, node: yaml.Node, path: str, base: Path) -> Tls | None:
    """`auto` | `off` | `{client_ca: FILE, ca_file: FILE}` (HTTPS with the inventory's CA)."""
    if isinstance(node, yaml.ScalarNode):
        value = reader.string(node, path)
        if value == "auto":
            return Tls(mode="auto")
        if value == "off":
            return Tls(mode="off")
        if value is not None:
            reader.fail(node, path, f"must be {_POLICY_FORMS}; got {reader.shown(node, value)}")
        return None
    pairs = reader.mapping(node, path, POLICY_KEYS)
    if pairs is None:
        return None
    files = {key: _file(reader, value, f"{path}.{key}", base) for key, (_, value) in pairs.items()}
    if any(f is None for f in files.values()):
        return None
    return Tls(mode="auto", client_ca=files.get("client_ca"), ca_file=files.get("ca_file"))


def read_own_cert(reader: Reader, node: yaml.Node, path: str, base: Path) -> OwnCert | None:
    """A host's own `{cert_file, key_file}`: both, existing files (read at `apply`)."""
    if isinstance(node, yaml.ScalarNode):
        reader.fail(node, path, "under a host, tls takes {cert_file, key_file}: the host's own "
                    "certificate; auto and off are set per target or in defaults")  # fmt: skip
        return None
    pairs = reader.mapping(node, path, OWN_CERT_KEYS)
    if pairs is None:
        return None
    missing = [k for k in OWN_CERT_KEYS if k not in pairs]
    if missing:
        reader.fail(node, path, f"needs {' and '.join(missing)} too (a certificate and its key)")
        return None
    cert = _file(reader, pairs["cert_file"][1], f"{path}.cert_file", base)
    key = _file(reader, pairs["key_file"][1], f"{path}.key_file", base)
    return OwnCert(cert, key) if cert and key else None


def _file(reader: Reader, node: yaml.Node, path: str, base: Path) -> Path | None:
    found = reader.path(node, path, base)
    if found is not None and not found.is_file():
        reader.fail(node, path, f"{found} is not a file")
        return None
    return found
