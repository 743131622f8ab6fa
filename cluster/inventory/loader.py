"""Load and validate an inventory file; nothing runs until all of it is known good."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import yaml

from cluster.errors import InventoryError, Problem
from cluster.gates import GateSyntaxError, parse_gate
from cluster.inventory.ansible import read_ansible
from cluster.inventory.hostfields import (
    CONNECTION_FIELDS,
    HOST_FIELDS,
    NAME_RE,
    HostSpec,
    read_field,
    read_fields,
    read_secret,
    resolve,
)
from cluster.inventory.model import (
    App,
    AppAuth,
    Host,
    Inventory,
    Rollout,
    Settings,
    Target,
    Tls,
)
from cluster.inventory.tlsfields import read_policy
from cluster.inventory.yamlread import Loc, Reader, env_shown, env_text, suggest

TOP_KEYS = ("defaults", "hosts", "targets", "apps", "ansible_inventory")
SETTING_KEYS = (
    "concurrency",
    "connect_timeout",
    "keepalive_interval",
    "command_timeout",
    "model_store",
    "tls",
    "tls_dir",
)
DEFAULT_KEYS = CONNECTION_FIELDS + SETTING_KEYS
TARGET_KEYS = ("topology", "host", "head", "workers", "hosts", "rollout", "read_only", "tls")
TOPOLOGY_KEYS = {
    "single": ("topology", "host", "read_only", "tls"),
    "cluster": ("topology", "head", "workers", "read_only", "tls"),
    "edge": ("topology", "hosts", "rollout", "read_only", "tls"),
}
APP_KEYS = (
    "target", "model", "replicas", "route", "gates", "num_cpus", "max_rows", "auth", "log_features",
)  # fmt: skip
AUTH_KEYS = ("predict", "key", "grace")
_GRACE_RE = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d)?$")
_GRACE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
MODEL_RE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?::(?P<version>[A-Za-z0-9._-]+))?$")
ROUTE_RE = re.compile(r"^/[A-Za-z0-9._~/-]*$")


def load_inventory(path: Path | str, env: Mapping[str, str] | None = None) -> Inventory:
    """The validated inventory, or InventoryError listing every problem with its place."""
    path = Path(path)
    file = str(path)
    reader = Reader(file, dict(os.environ if env is None else env))
    text = _read_text(path)
    root = reader.compose(text)
    reader.raise_if_problems()
    if root is None:
        raise InventoryError(
            [Problem(file, 1, 1, "", "the inventory is empty; see inventory.example.yaml")]
        )
    top = reader.mapping(root, "", TOP_KEYS)
    reader.raise_if_problems()
    assert top is not None
    base = path.resolve().parent

    defaults, settings = _read_defaults(reader, top, base)
    specs = _read_hosts(reader, top, base)
    hosts = _resolve_hosts(reader, specs, defaults)
    targets, declared = _read_targets(reader, top, hosts, settings.tls, base)
    apps = _read_apps(reader, top, targets, declared)
    reader.raise_if_problems()
    warnings = tuple(
        f"host key checking is OFF for {h.name} ({h.endpoint}): a man-in-the-middle would go "
        f"unnoticed (set host_key_checking: true in {file})"
        for h in hosts.values()
        if h.connection == "ssh" and not h.verify_host_key
    ) + tuple(
        f"TLS is OFF for target {t.name}: its Serve port answers plain HTTP, so predictions, "
        f"labels and app keys cross the network in clear (set tls: auto in {file})"
        for t in targets.values()
        if not t.tls.on
    )
    return Inventory(path, settings, hosts, targets, apps, warnings)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InventoryError([Problem(str(path), 1, 1, "", "no such inventory file")]) from None
    except IsADirectoryError:
        raise InventoryError(
            [Problem(str(path), 1, 1, "", "is a directory, not an inventory file")]
        ) from None
    except UnicodeDecodeError as exc:
        raise InventoryError(
            [Problem(str(path), 1, 1, "", f"not UTF-8 text ({exc.reason})")]
        ) from None
    except OSError as exc:
        raise InventoryError(
            [Problem(str(path), 1, 1, "", f"cannot read: {exc.strerror}")]
        ) from None


def _read_defaults(
    reader: Reader, top: dict[str, tuple[yaml.Node, yaml.Node]], base: Path
) -> tuple[HostSpec, Settings]:
    if "defaults" not in top:
        return HostSpec("defaults", Loc(reader.file, 1, 1)), Settings(
            model_store=base / "models", tls_dir=base / "tls"
        )
    node = top["defaults"][1]
    defaults = HostSpec("defaults", reader.loc(node))
    pairs = reader.mapping(node, "defaults", DEFAULT_KEYS) or {}
    conn_pairs = {k: v for k, v in pairs.items() if k in CONNECTION_FIELDS}
    read_fields(reader, defaults, conn_pairs, "defaults", base)
    kw: dict[str, object] = {"model_store": base / "models", "tls_dir": base / "tls"}
    for key, (_, node) in pairs.items():
        path = f"defaults.{key}"
        if key == "concurrency":
            kw[key] = reader.integer(node, path, 1, 4096)
        elif key in ("connect_timeout", "keepalive_interval", "command_timeout"):
            kw[key] = reader.number(node, path, 0.1, 86400)
        elif key in ("model_store", "tls_dir"):
            kw[key] = reader.path(node, path, base)
        elif key == "tls":
            kw[key] = read_policy(reader, node, path, base)
    clean = {k: v for k, v in kw.items() if v is not None}
    return defaults, Settings(**clean)  # type: ignore[arg-type]


def _read_hosts(
    reader: Reader, top: dict[str, tuple[yaml.Node, yaml.Node]], base: Path
) -> list[HostSpec]:
    specs: list[HostSpec] = []
    if "hosts" in top:
        pairs = reader.mapping(top["hosts"][1], "hosts") or {}
        for name, (key_node, value_node) in pairs.items():
            path = f"hosts.{name}"
            if not NAME_RE.match(name):
                reader.fail(key_node, path, "host names use letters, digits, '.', '_' and '-'")
                continue
            spec = HostSpec(name, reader.loc(key_node))
            if (
                isinstance(value_node, yaml.ScalarNode)
                and value_node.value != ""
                and value_node.tag != "tag:yaml.org,2002:null"
            ):
                address = read_field(reader, "address", value_node, path, base)  # `name: address`
                if address is not None:
                    spec.put("address", address, value_node, path)
            else:
                host_pairs = reader.mapping(value_node, path, HOST_FIELDS) or {}
                read_fields(reader, spec, host_pairs, path, base)
            specs.append(spec)
    if "ansible_inventory" in top:
        specs.extend(read_ansible(reader, top["ansible_inventory"][1], base))
    return specs


def _resolve_hosts(reader: Reader, specs: list[HostSpec], defaults: HostSpec) -> dict[str, Host]:
    file = reader.file
    hosts: dict[str, Host] = {}
    refs: dict[str, dict[str, str]] = {}
    # The same private address behind two different jump hosts is two machines.
    endpoints: dict[tuple[str, int, str | None], Host] = {}
    for spec in specs:
        host = resolve(spec, defaults)
        if spec.name in hosts:
            first = hosts[spec.name].loc
            here = "in hosts:" if spec.loc.file == file else "in the Ansible inventory"
            there = (
                "in hosts:"
                if first is not None and first.file == file
                else "in the Ansible inventory"
            )
            reader.problems.append(
                Problem(
                    spec.loc.file,
                    spec.loc.line,
                    spec.loc.column,
                    spec.name if spec.loc.file != file else f"hosts.{spec.name}",
                    f"duplicate host '{spec.name}': defined here ({here}) and at {first} "
                    f"({there}); keep one",
                )
            )
            continue
        env = {**defaults.env_refs, **spec.env_refs}
        if host.connection == "ssh":
            key = (host.address, host.port, host.via)
            if key in endpoints:
                other = endpoints[key]
                reader.problems.append(
                    Problem(
                        spec.loc.file,
                        spec.loc.line,
                        spec.loc.column,
                        f"hosts.{spec.name}",
                        f"duplicate host: same address and port as '{other.name}' "
                        f"({_endpoint_shown(host, env)}, defined at {other.loc})",
                    )
                )
                continue
            endpoints[key] = host
        hosts[spec.name] = host
        refs[spec.name] = env
    for host in hosts.values():
        _check_via(reader, host, hosts, refs)
        ports = [host.ray.gcs, host.ray.dashboard, host.ray.metrics, host.ray.serve_http]
        if len(set(ports)) != len(ports) and host.loc is not None:
            reader.problems.append(
                Problem(
                    host.loc.file,
                    host.loc.line,
                    host.loc.column,
                    f"hosts.{host.name}.ray",
                    f"Ray ports must differ from each other, got {ports}",
                )
            )
    return hosts


def _endpoint_shown(host: Host, env: dict[str, str]) -> str:
    """address:port (via jump host) for a message, naming `${VAR}`s instead of their values."""
    address = env_shown(env["address"]) if "address" in env else host.address
    port = env_shown(env["port"]) if "port" in env else str(host.port)
    text = (
        f"{address}:{port}" if not env.keys() & {"address", "port"} else f"{address}, port {port}"
    )
    if host.via is not None:
        text += f" via {env_shown(env['via']) if 'via' in env else host.via}"
    return text


def _check_via(
    reader: Reader, host: Host, hosts: dict[str, Host], refs: dict[str, dict[str, str]]
) -> None:
    if host.via is None or host.loc is None:
        return
    loc = host.loc
    path = host.origin("via").split(" in ", 1)[0]  # "app.ansible_ssh_common_args in FILE"

    def fail(msg: str) -> None:
        reader.problems.append(Problem(loc.file, loc.line, loc.column, path, msg))

    if host.connection == "local":
        fail("a local host is not reached through a jump host")
        return
    seen = [host.name]
    cur: Host | None = host
    while cur is not None and cur.via is not None:
        if cur.via not in hosts:
            raw = refs.get(cur.name, {}).get("via")
            if raw is not None:
                fail(f"jump host {env_shown(raw)} is not a host")
            else:
                fail(f"jump host '{cur.via}' is not a host{suggest(cur.via, list(hosts))}")
            return
        nxt = hosts[cur.via]
        if nxt.connection == "local":
            fail(f"jump host '{nxt.name}' is local; a jump host must be reached over SSH")
            return
        if nxt.name in seen:
            fail(f"jump hosts form a loop: {' -> '.join([*seen, nxt.name])}")
            return
        seen.append(nxt.name)
        cur = nxt


def _read_targets(
    reader: Reader,
    top: dict[str, tuple[yaml.Node, yaml.Node]],
    hosts: dict[str, Host],
    tls: Tls,
    base: Path,
) -> tuple[dict[str, Target], set[str]]:
    """Valid targets, and the names of all declared ones (valid or not)."""
    targets: dict[str, Target] = {}
    owner: dict[str, str] = {}
    pairs = (reader.mapping(top["targets"][1], "targets") if "targets" in top else {}) or {}
    for name, (key_node, value_node) in pairs.items():
        path = f"targets.{name}"
        if not NAME_RE.match(name):
            reader.fail(key_node, path, "target names use letters, digits, '.', '_' and '-'")
            continue
        target = _read_target(reader, name, value_node, path, hosts, tls, base)
        if target is None:
            continue
        for host in target.hosts:
            if host in owner and owner[host] != name:
                reader.fail(
                    value_node,
                    path,
                    f"host '{host}' is already in target '{owner[host]}'; "
                    "a host runs one Ray, so it belongs to one target",
                )
            owner.setdefault(host, name)
        targets[name] = target
    return targets, set(pairs)


def _read_target(
    reader: Reader,
    name: str,
    node: yaml.Node,
    path: str,
    hosts: dict[str, Host],
    default_tls: Tls,
    base: Path,
) -> Target | None:
    pairs = reader.mapping(node, path, TARGET_KEYS)
    if pairs is None:
        return None
    if "topology" not in pairs:
        reader.fail(node, f"{path}.topology", "missing; one of: single, cluster, edge")
        return None
    topo_node = pairs["topology"][1]
    topology = reader.string(topo_node, f"{path}.topology")
    if topology not in TOPOLOGY_KEYS:
        if topology is not None:
            reader.fail(
                topo_node,
                f"{path}.topology",
                f"unknown topology {reader.shown(topo_node, topology)}"
                f"{_hint(reader, topo_node, topology, list(TOPOLOGY_KEYS))}",
            )
        return None
    allowed = TOPOLOGY_KEYS[topology]
    for key, (key_node, _) in pairs.items():
        if key not in allowed:
            reader.fail(
                key_node,
                f"{path}.{key}",
                f"'{key}' does not apply to topology {topology} (it takes: {', '.join(allowed[1:])})",
            )

    def host_ref(n: yaml.Node, p: str) -> str | None:
        ref = reader.string(n, p)
        if ref is not None and ref not in hosts:
            reader.fail(
                n, p, f"{reader.shown(n, ref)} is not a host{_hint(reader, n, ref, list(hosts))}"
            )
            return None
        return ref

    def host_list(key: str) -> tuple[str, ...]:
        items = reader.sequence(pairs[key][1], f"{path}.{key}") or []
        refs = [host_ref(n, f"{path}.{key}[{i}]") for i, n in enumerate(items)]
        out: list[str] = []
        for i, ref in enumerate(refs):
            if ref is None:
                continue
            if ref in out:
                reader.fail(
                    items[i], f"{path}.{key}[{i}]", f"{reader.shown(items[i], ref)} is listed twice"
                )
                continue
            out.append(ref)
        return tuple(out)

    def required(key: str) -> bool:
        if key not in pairs:
            reader.fail(node, f"{path}.{key}", f"missing; topology {topology} needs '{key}'")
            return False
        return True

    loc = reader.loc(node)
    read_only = (
        bool(reader.boolean(pairs["read_only"][1], f"{path}.read_only"))
        if "read_only" in pairs
        else False
    )
    tls = (
        read_policy(reader, pairs["tls"][1], f"{path}.tls", base) or default_tls
        if "tls" in pairs
        else default_tls
    )
    if topology == "single":
        head = host_ref(pairs["host"][1], f"{path}.host") if required("host") else None
        return (
            Target(name, "single", head=head, read_only=read_only, tls=tls, loc=loc)
            if head
            else None
        )
    if topology == "cluster":
        head = host_ref(pairs["head"][1], f"{path}.head") if required("head") else None
        workers = host_list("workers") if "workers" in pairs else ()
        if head and head in workers:
            reader.fail(
                pairs["workers"][1],
                f"{path}.workers",
                f"'{head}' is the head; it cannot also be a worker",
            )
        return (
            Target(
                name, "cluster", head=head, workers=workers, read_only=read_only, tls=tls, loc=loc
            )
            if head
            else None
        )
    edge_hosts = host_list("hosts") if required("hosts") else ()
    if "hosts" in pairs and not edge_hosts:
        reader.fail(pairs["hosts"][1], f"{path}.hosts", "an edge target needs at least one host")
    rollout = (
        _read_rollout(reader, pairs["rollout"][1], f"{path}.rollout")
        if "rollout" in pairs
        else Rollout()
    )
    return Target(
        name, "edge", edge_hosts=edge_hosts, rollout=rollout, read_only=read_only, tls=tls, loc=loc
    )


def _read_rollout(reader: Reader, node: yaml.Node, path: str) -> Rollout:
    pairs = reader.mapping(node, path, ("batch", "max_failures")) or {}
    batch = (
        reader.integer(pairs["batch"][1], f"{path}.batch", 1, 10000) if "batch" in pairs else None
    )
    fails = (
        reader.integer(pairs["max_failures"][1], f"{path}.max_failures", 0, 10000)
        if "max_failures" in pairs
        else None
    )
    return Rollout(batch=batch or 1, max_failures=fails or 0)


def _read_apps(
    reader: Reader,
    top: dict[str, tuple[yaml.Node, yaml.Node]],
    targets: dict[str, Target],
    declared: set[str],
) -> dict[str, App]:
    """Apps; a reference to a declared target that had its own problems is not reported twice."""
    apps: dict[str, App] = {}
    routes: dict[tuple[str, str], str] = {}
    pairs = reader.mapping(top["apps"][1], "apps") if "apps" in top else {}
    for name, (key_node, node) in (pairs or {}).items():
        path = f"apps.{name}"
        if not NAME_RE.match(name):
            reader.fail(key_node, path, "app names use letters, digits, '.', '_' and '-'")
            continue
        if "--" in name:
            # Serve applications are named APP--VERSION: `x--y` would pass for a version of `x`.
            reader.fail(key_node, path, "app names may not contain '--' (it separates versions)")
            continue
        app = _read_app(reader, name, node, path, targets, declared)
        if app is None:
            continue
        key = (app.target, app.route)
        if key in routes:
            reader.fail(
                node,
                f"{path}.route",
                f"route '{app.route}' is already used by app '{routes[key]}' on target '{app.target}'",
            )
            continue
        routes[key] = name
        apps[name] = app
    return apps


def _read_app(
    reader: Reader,
    name: str,
    node: yaml.Node,
    path: str,
    targets: dict[str, Target],
    declared: set[str],
) -> App | None:
    pairs = reader.mapping(node, path, APP_KEYS)
    if pairs is None:
        return None
    ok = True
    target = model = version = None
    for key in ("target", "model"):
        if key not in pairs:
            reader.fail(node, f"{path}.{key}", f"missing; an app needs a '{key}'")
            ok = False
    if "target" in pairs:
        t_node = pairs["target"][1]
        target = reader.string(t_node, f"{path}.target")
        if target is not None and target not in targets:
            if target not in declared:
                hint = _hint(reader, t_node, target, sorted(declared))
                shown = reader.shown(t_node, target)
                reader.fail(t_node, f"{path}.target", f"no target named {shown}{hint}")
            target = None
    if "model" in pairs:
        m_node = pairs["model"][1]
        text = reader.string(m_node, f"{path}.model")
        match = MODEL_RE.match(text) if text is not None else None
        if text is not None and match is None:
            got = reader.shown(m_node, text)
            reader.fail(m_node, f"{path}.model", f"write NAME or NAME:VERSION, got {got}")
        if match:
            model, version = match["name"], match["version"]
    replicas = (
        reader.integer(pairs["replicas"][1], f"{path}.replicas", 1, 1000)
        if "replicas" in pairs
        else 1
    )
    num_cpus = (
        reader.number(pairs["num_cpus"][1], f"{path}.num_cpus", 0, 256)
        if "num_cpus" in pairs
        else 0.5
    )
    max_rows = (
        reader.integer(pairs["max_rows"][1], f"{path}.max_rows", 1, 100_000)
        if "max_rows" in pairs
        else 1024
    )
    route: str | None = f"/{name}"
    if "route" in pairs:
        r_node = pairs["route"][1]
        route = reader.string(r_node, f"{path}.route")
        if route is not None and not ROUTE_RE.match(route):
            reader.fail(
                r_node,
                f"{path}.route",
                f"a route starts with '/' and uses URL-safe characters, "
                f"got {reader.shown(r_node, route)}",
            )
            route = None
    gates = []
    if "gates" in pairs:
        items = reader.sequence(pairs["gates"][1], f"{path}.gates") or []
        for i, g_node in enumerate(items):
            text = reader.string(g_node, f"{path}.gates[{i}]")
            if text is None:
                continue
            try:
                gates.append(parse_gate(text))
            except GateSyntaxError as exc:
                # The parser quotes the gate; one from ${VAR} is named, never shown.
                raw = env_text(g_node)
                why = str(exc) if raw is None else f"{env_shown(raw)} is not a valid gate"
                reader.fail(g_node, f"{path}.gates[{i}]", why)
    auth = _read_auth(reader, pairs["auth"][1], f"{path}.auth") if "auth" in pairs else AppAuth()
    log_features: bool | None = False
    if "log_features" in pairs:
        log_features = reader.boolean(pairs["log_features"][1], f"{path}.log_features")
    if (
        not ok
        or auth is None
        or target is None
        or model is None
        or replicas is None
        or route is None
        or num_cpus is None
        or max_rows is None
        or log_features is None
    ):
        return None
    return App(
        name,
        target,
        model,
        version,
        replicas,
        route,
        num_cpus,
        tuple(gates),
        reader.loc(node),
        max_rows=max_rows,
        auth=auth,
        log_features=log_features,
    )


def _read_auth(reader: Reader, node: yaml.Node, path: str) -> AppAuth | None:
    """`auth: {predict: true, key: ${APP_KEY}, grace: 1h}`; every part is optional."""
    pairs = reader.mapping(node, path, AUTH_KEYS)
    if pairs is None:
        return None
    auth = AppAuth()
    if "predict" in pairs:
        predict = reader.boolean(pairs["predict"][1], f"{path}.predict")
        if predict is None:
            return None
        auth = replace(auth, predict=predict)
    if "key" in pairs:
        k_node = pairs["key"][1]
        if env_text(k_node) is None or not isinstance(k_node, yaml.ScalarNode):
            reader.fail(k_node, f"{path}.key", "inline keys are refused: the inventory is kept "
                        "in git. Reference an environment variable (key: ${APP_KEY}), or leave "
                        "key out and `apply` makes one")  # fmt: skip
            return None
        key = read_secret(reader, k_node, f"{path}.key", "key")
        if key is None:
            return None
        if len(key.reveal()) < 16:
            # Named by its reference only: the value is a secret.
            raw = env_text(pairs["key"][1]) or "the key"
            reader.fail(pairs["key"][1], f"{path}.key", f"{env_shown(raw)} is shorter than 16 "
                        "characters; use a long random key, e.g. `openssl rand -hex 32`")  # fmt: skip
            return None
        auth = replace(auth, key=key)
    if "grace" in pairs:
        g_node = pairs["grace"][1]
        text = str(g_node.value).strip() if isinstance(g_node, yaml.ScalarNode) else ""
        match = _GRACE_RE.match(text)
        if match is None:
            reader.fail(g_node, f"{path}.grace", f"write a duration like 30s, 10m, 1h or 1d, got "
                        f"{reader.shown(g_node, text)}")  # fmt: skip
            return None
        auth = replace(auth, grace_s=float(match[1]) * _GRACE_UNITS[match[2]])
    return auth


def _hint(reader: Reader, node: yaml.Node, value: str, choices: list[str]) -> str:
    """A did-you-mean hint, except for a value from `${VAR}`: a hint would hint at it."""
    return "" if env_text(node) is not None else suggest(value, choices)
