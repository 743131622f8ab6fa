"""Per-host connection fields, shared by `defaults`, `hosts` and Ansible host vars."""

from __future__ import annotations

import getpass
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cluster.inventory.model import Bootstrap, Host, OwnCert, RayPorts, Secret
from cluster.inventory.tlsfields import read_own_cert
from cluster.inventory.yamlread import ENV_REF, Loc, Reader, env_text

SECRET_FIELDS = ("password", "key_passphrase")
CONNECTION_FIELDS = (
    "user",
    "port",
    "key_file",
    "known_hosts",
    "host_key_checking",
    "host_key_policy",
    "python",
    "remote_dir",
    "ray",
    "bootstrap",
    *SECRET_FIELDS,
)
BOOTSTRAP_KEYS = ("venv", "requirements", "wheelhouse")
# strict: a host must be in known_hosts already; accept-new: an unknown host's key is recorded
# on first contact (a changed one is still refused), as OpenSSH's StrictHostKeyChecking.
HOST_KEY_POLICIES = ("strict", "accept-new")
# What the serving runtime needs on a host; Ray's version matches the console's pin.
RUNTIME_REQUIREMENTS = ("ray[serve]==2.60.0", "onnxruntime>=1.18", "numpy")
RAY_KEYS = {
    "port": "gcs",
    "dashboard_port": "dashboard",
    "metrics_port": "metrics",
    "serve_port": "serve_http",
}
# `tls` under a host is its own certificate; under defaults it is the targets' policy.
HOST_FIELDS = ("address", "connection", "via", "labels", "tls", *CONNECTION_FIELDS)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_SECRET_WHY = (
    "inline secrets are refused: the inventory is kept in git, so everyone with the "
    "repository would have it. Prefer key-based auth (key_file), or reference an "
    "environment variable, e.g. {field}: ${{SSH_PASSWORD}}"
)


@dataclass
class HostSpec:
    """A host as written, before defaults fill the gaps."""

    name: str
    loc: Loc
    values: dict[str, object] = field(default_factory=dict)
    groups: tuple[str, ...] = ()
    # Where each value was set ("hosts.a.key_file"), so a later failure can say which
    # setting to fix; and the `${VAR}` text of values that came from the environment,
    # which messages name instead of the value (it may be a secret).
    origins: dict[str, str] = field(default_factory=dict)
    env_refs: dict[str, str] = field(default_factory=dict)

    def put(self, name: str, value: object, node: yaml.Node, origin: str) -> None:
        """Keep a value read from `node`, remembering where it was set."""
        self.values[name] = value
        self.origins[name] = origin
        raw = env_text(node)
        if raw is None:
            self.env_refs.pop(name, None)
        else:
            self.env_refs[name] = raw


def read_field(reader: Reader, name: str, node: yaml.Node, path: str, base: Path) -> object:
    """Read one host field by our name; returns None (and records a problem) when invalid."""
    if name in ("user", "python", "address", "via", "remote_dir"):
        value = reader.string(node, path)
        if value is not None and (not value.strip() or any(c.isspace() for c in value)):
            reader.fail(node, path, "must be non-empty and contain no spaces")
            return None
        return value
    if name == "port":
        return reader.integer(node, path, 1, 65535)
    if name in ("key_file", "known_hosts"):
        return reader.path(node, path, base)
    if name == "host_key_checking":
        return reader.boolean(node, path)
    if name == "host_key_policy":
        value = reader.string(node, path)
        if value is not None and value not in HOST_KEY_POLICIES:
            reader.fail(node, path, f"must be one of {', '.join(HOST_KEY_POLICIES)}, got "
                        f"{reader.shown(node, value)}")  # fmt: skip
            return None
        return value
    if name == "connection":
        value = reader.string(node, path)
        if value is not None and value not in ("ssh", "local"):
            reader.fail(node, path, f"must be 'ssh' or 'local', got {reader.shown(node, value)}")
            return None
        return value
    if name == "labels":
        return reader.string_map(node, path)
    if name in SECRET_FIELDS:
        return read_secret(reader, node, path, name)
    if name == "ray":
        return read_ray_ports(reader, node, path)
    if name == "bootstrap":
        return read_bootstrap(reader, node, path, base)
    if name == "tls":
        return read_own_cert(reader, node, path, base)
    raise AssertionError(f"no reader for host field {name}")


def read_ray_ports(reader: Reader, node: yaml.Node, path: str) -> dict[str, int] | None:
    """Some or all Ray ports; a host's own ports override the defaults one by one."""
    pairs = reader.mapping(node, path, tuple(RAY_KEYS))
    if pairs is None:
        return None
    ports: dict[str, int] = {}
    for key, (_, value_node) in pairs.items():
        value = reader.integer(value_node, f"{path}.{key}", 1, 65535)
        if value is not None:
            ports[RAY_KEYS[key]] = value
    return ports


def read_bootstrap(
    reader: Reader, node: yaml.Node, path: str, base: Path
) -> dict[str, object] | None:
    """`venv` (absolute, on the host), `requirements` (pip specs), `wheelhouse` (local dir)."""
    pairs = reader.mapping(node, path, BOOTSTRAP_KEYS)
    if pairs is None:
        return None
    out: dict[str, object] = {}
    if "venv" not in pairs:
        reader.fail(node, path, "needs venv: the absolute path of the venv to create on the host")
    else:
        venv = reader.string(pairs["venv"][1], f"{path}.venv")
        if venv is not None and (not venv.startswith("/") or any(c.isspace() for c in venv)):
            reader.fail(pairs["venv"][1], f"{path}.venv", "must be an absolute path without spaces")
        elif venv is not None:
            out["venv"] = venv.rstrip("/")
    if "requirements" in pairs:
        node_r = pairs["requirements"][1]
        requirements = reader.string_list(node_r, f"{path}.requirements")
        if requirements == []:
            reader.fail(node_r, f"{path}.requirements", "lists nothing to install; leave it out "
                        "for the default (ray[serve], onnxruntime, numpy)")  # fmt: skip
        elif requirements is not None:
            out["requirements"] = tuple(requirements)
    if "wheelhouse" in pairs:
        wheelhouse = reader.path(pairs["wheelhouse"][1], f"{path}.wheelhouse", base)
        if wheelhouse is not None and not wheelhouse.is_dir():
            reader.fail(
                pairs["wheelhouse"][1], f"{path}.wheelhouse", f"{wheelhouse} is not a directory"
            )
        elif wheelhouse is not None:
            out["wheelhouse"] = wheelhouse
    return out if "venv" in out else None


def read_secret(reader: Reader, node: yaml.Node, path: str, name: str) -> Secret | None:
    """Only a whole `${VAR}` reference is accepted; the value is never echoed back."""
    raw = node.value if isinstance(node, yaml.ScalarNode) else None
    if not isinstance(raw, str) or not ENV_REF.fullmatch(raw):
        reader.fail(node, path, _SECRET_WHY.format(field=name))
        return None
    value = reader.string(node, path)
    return Secret(value) if value is not None else None


def read_fields(
    reader: Reader,
    spec: HostSpec,
    pairs: dict[str, tuple[yaml.Node, yaml.Node]],
    path: str,
    base: Path,
) -> None:
    """Read every field of one mapping (a host's or `defaults`) into `spec`."""
    for key, (_, value_node) in pairs.items():
        value = read_field(reader, key, value_node, f"{path}.{key}", base)
        if value is not None:
            spec.put(key, value, value_node, f"{path}.{key}")


def resolve(spec: HostSpec, defaults: HostSpec | None = None) -> Host:
    """A Host with every setting filled: the host's own value, else defaults, else built-ins."""
    fallback_values = defaults.values if defaults is not None else {}
    fallback_origins = defaults.origins if defaults is not None else {}

    def pick(key: str, fallback: object) -> object:
        return spec.values.get(key, fallback_values.get(key, fallback))

    origins = {**fallback_origins, **spec.origins}

    connection = str(spec.values.get("connection", "ssh"))
    local = connection == "local"
    # The local host runs under this very interpreter unless told otherwise; remote
    # defaults describe remote machines, so they do not apply to it.
    python = spec.values.get("python", sys.executable) if local else pick("python", "python3")
    key_file = pick("key_file", None)
    known_hosts = pick("known_hosts", None)
    labels = spec.values.get("labels", {})
    password = pick("password", None)
    passphrase = pick("key_passphrase", None)
    via = spec.values.get("via")
    ports = RayPorts(**{**_ports(fallback_values.get("ray")), **_ports(spec.values.get("ray"))})
    bootstrap = _bootstrap(pick("bootstrap", None), str(python))
    return Host(
        name=spec.name,
        address=str(spec.values.get("address", LOCAL_ADDRESS if local else spec.name)),
        connection="local" if local else "ssh",
        user=str(pick("user", getpass.getuser())),
        port=int(str(pick("port", 22))),
        key_file=key_file if isinstance(key_file, Path) else None,
        known_hosts=known_hosts if isinstance(known_hosts, Path) else None,
        verify_host_key=bool(pick("host_key_checking", True)),
        accept_new_host_key=pick("host_key_policy", "strict") == "accept-new",
        via=str(via) if via is not None else None,
        python=bootstrap.python if bootstrap else str(python),
        bootstrap=bootstrap,
        remote_dir=str(pick("remote_dir", ".mlops-tui")),
        ray=ports,
        labels=dict(labels) if isinstance(labels, dict) else {},
        groups=spec.groups,
        password=password if isinstance(password, Secret) else None,
        key_passphrase=passphrase if isinstance(passphrase, Secret) else None,
        own_cert=own if isinstance(own := spec.values.get("tls"), OwnCert) else None,
        loc=spec.loc,
        origins=origins,
    )


# The local host's default address. Not 127.0.0.1 on Linux: Ray rewrites that one to the
# machine's outward IP for some of its processes, so a "local" Ray would leave loopback.
LOCAL_ADDRESS = "127.0.0.2" if sys.platform.startswith("linux") else "127.0.0.1"


def _bootstrap(value: object, base_python: str) -> Bootstrap | None:
    """The parsed `bootstrap:` mapping as a Bootstrap; the configured python creates the venv."""
    if not isinstance(value, dict) or "venv" not in value:
        return None
    requirements = value.get("requirements", RUNTIME_REQUIREMENTS)
    wheelhouse = value.get("wheelhouse")
    return Bootstrap(
        venv=str(value["venv"]),
        base_python=base_python,
        requirements=tuple(str(r) for r in requirements)
        if isinstance(requirements, tuple)
        else RUNTIME_REQUIREMENTS,
        wheelhouse=wheelhouse if isinstance(wheelhouse, Path) else None,
    )


def _ports(value: object) -> dict[str, int]:
    """A parsed `ray:` mapping (RayPorts field -> port), or nothing."""
    return {str(k): int(v) for k, v in value.items()} if isinstance(value, dict) else {}
