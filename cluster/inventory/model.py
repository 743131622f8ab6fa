"""The validated inventory: plain frozen dataclasses every operation reads from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cluster.gates import Gate
from cluster.inventory.yamlread import Loc

Topology = Literal["single", "cluster", "edge"]
Connection = Literal["ssh", "local"]
TlsMode = Literal["auto", "off"]


class Secret:
    """A value that must never be printed: repr and str show only asterisks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class RayPorts:
    """Ports a Ray node binds on its host's own address."""

    gcs: int = 6379
    dashboard: int = 8265
    metrics: int = 8080
    serve_http: int = 8000


@dataclass(frozen=True)
class Bootstrap:
    """A venv mlops-tui makes on the host: `python -m venv`, then pip from the index or, for
    air-gapped hosts, only from an uploaded wheelhouse. The venv's python runs Ray."""

    venv: str  # absolute path on the host
    base_python: str  # the interpreter that creates the venv
    requirements: tuple[str, ...]
    wheelhouse: Path | None = None  # a local directory of wheels; None means the package index

    @property
    def python(self) -> str:
        return f"{self.venv}/bin/python"


@dataclass(frozen=True)
class OwnCert:
    """A host's certificate and key from the operator (`tls: {cert_file, key_file}` under
    the host), shipped as they are instead of one issued by the inventory's CA."""

    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class Tls:
    """How a target's Serve ports speak: HTTPS with certificates from the inventory's CA
    (`auto`, the default) or plain HTTP (`off`, warned about on every command).

    `client_ca`: clients must present a certificate signed by it (mutual TLS); ours present
    one from the inventory's CA. `ca_file`: the CA that signed hosts' own certificates,
    which our clients verify them against (besides the inventory's CA)."""

    mode: TlsMode = "auto"
    client_ca: Path | None = None
    ca_file: Path | None = None

    @property
    def on(self) -> bool:
        return self.mode != "off"


@dataclass(frozen=True)
class Host:
    """One machine, with every connection setting already resolved from defaults."""

    name: str
    address: str
    connection: Connection
    user: str
    port: int
    key_file: Path | None
    known_hosts: Path | None
    verify_host_key: bool
    via: str | None
    python: str
    remote_dir: str = ".mlops-tui"
    ray: RayPorts = RayPorts()
    labels: dict[str, str] = field(default_factory=dict)
    groups: tuple[str, ...] = ()
    password: Secret | None = None
    key_passphrase: Secret | None = None
    bootstrap: Bootstrap | None = None  # when set, `python` is the venv's interpreter
    # host_key_policy: accept-new records an unknown host's key in known_hosts on first contact.
    accept_new_host_key: bool = False
    own_cert: OwnCert | None = None  # else, with TLS on, one issued by the inventory's CA
    loc: Loc | None = field(default=None, compare=False)
    # Setting -> where it was set ("hosts.a.key_file", "defaults.known_hosts"), so a
    # failure caused by a setting can name the one to fix.
    origins: dict[str, str] = field(default_factory=dict, compare=False)

    def origin(self, setting: str) -> str:
        """Where `setting` was set, or its field path on this host when not recorded."""
        return self.origins.get(setting, f"hosts.{self.name}.{setting}")

    @property
    def script_python(self) -> str:
        """The interpreter for our stdlib-only helper scripts: it exists before any bootstrap."""
        return self.bootstrap.base_python if self.bootstrap else self.python

    @property
    def endpoint(self) -> str:
        return "local" if self.connection == "local" else f"{self.user}@{self.address}:{self.port}"


@dataclass(frozen=True)
class Rollout:
    """How an edge fleet is changed: `batch` hosts at a time, stop past `max_failures`."""

    batch: int = 1
    max_failures: int = 0


@dataclass(frozen=True)
class Target:
    """Where apps run: one host, a head with workers, or independent edge hosts."""

    name: str
    topology: Topology
    head: str | None = None
    workers: tuple[str, ...] = ()
    edge_hosts: tuple[str, ...] = ()
    rollout: Rollout = Rollout()
    # Production: the console refuses every action that would change this target.
    read_only: bool = False
    tls: Tls = Tls()
    loc: Loc | None = field(default=None, compare=False)

    @property
    def hosts(self) -> tuple[str, ...]:
        if self.topology == "edge":
            return self.edge_hosts
        return ((self.head,) if self.head else ()) + self.workers


DEFAULT_KEY_GRACE_S = 3600.0


@dataclass(frozen=True)
class AppAuth:
    """Who may call an app: its key (from `${ENV}`, else made by `apply` and kept on the
    nodes), whether `/predict` needs it too, and how long a replaced key still works."""

    predict: bool = False
    key: Secret | None = None
    grace_s: float = DEFAULT_KEY_GRACE_S


@dataclass(frozen=True)
class App:
    """A model served under a route on a target, with the gates its swaps must pass."""

    name: str
    target: str
    model: str
    model_version: str | None
    replicas: int
    route: str
    num_cpus: float
    gates: tuple[Gate, ...] = ()
    loc: Loc | None = field(default=None, compare=False)
    max_rows: int = 1024  # rows per /predict request above which the app answers 413
    auth: AppAuth = field(default_factory=AppAuth)
    # Keep each request's input on the nodes, with its prediction and label (models update).
    log_features: bool = False


@dataclass(frozen=True)
class Settings:
    """Run-wide settings from `defaults` that are not per-host."""

    concurrency: int = 32
    connect_timeout: float = 10.0
    keepalive_interval: float = 15.0
    command_timeout: float = 120.0
    model_store: Path = Path("models")
    tls: Tls = Tls()  # targets' default
    # The inventory's CA (key mode 600, never leaves this machine): beside the model store.
    tls_dir: Path = Path("tls")


@dataclass(frozen=True)
class Inventory:
    """Everything the operator declared, validated and cross-checked."""

    path: Path
    settings: Settings
    hosts: dict[str, Host]
    targets: dict[str, Target]
    apps: dict[str, App]
    warnings: tuple[str, ...] = ()

    def hosts_of(self, target_names: list[str] | None = None) -> list[Host]:
        """Hosts of the named targets (all hosts when none named), in inventory order."""
        if not target_names:
            return list(self.hosts.values())
        wanted: dict[str, None] = {}
        for name in target_names:
            for host in self.targets[name].hosts:
                wanted[host] = None
        return [self.hosts[h] for h in wanted]
