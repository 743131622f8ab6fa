"""Each host's variables as Ansible resolves them, read into our host fields.

Precedence, lowest first (Ansible's default VARIABLE_PRECEDENCE, then host vars):
`all`'s vars from the inventory files; the host's other groups' vars, ordered by depth
from `all`, then `ansible_group_priority`, then name (later wins); `group_vars/all`;
`group_vars/GROUP` in the same group order; the host's own vars; `host_vars/HOST`.
When a host ends up with both a variable and its older `ansible_ssh_*` alias, the alias
wins, as in Ansible's ssh connection plugin (the last name it lists for a setting wins).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from cluster.inventory.ansible.graph import Graph, Value
from cluster.inventory.ansible.jump import Jump, JumpError, jump_of
from cluster.inventory.ansible.varsdirs import VarsDirs
from cluster.inventory.hostfields import HostSpec, read_field

# Ansible variable -> our host field, applied in this order (later names win).
VAR_MAP = {
    "ansible_host": "address",
    "ansible_ssh_host": "address",
    "ansible_user": "user",
    "ansible_ssh_user": "user",
    "ansible_port": "port",
    "ansible_ssh_port": "port",
    "ansible_private_key_file": "key_file",
    "ansible_ssh_private_key_file": "key_file",
    "ansible_connection": "connection",
    "ansible_python_interpreter": "python",
    "ansible_password": "password",
    "ansible_ssh_pass": "password",
    "ansible_ssh_password": "password",
    "ansible_private_key_passphrase": "key_passphrase",
    "ansible_ssh_common_args": "via",
}
# Ansible connection plugins we can honour.
_CONNECTIONS = {"ssh": "ssh", "paramiko": "ssh", "smart": "ssh", "local": "local"}
# Jinja expression and statement openers: Ansible would template these; we cannot.
_JINJA = ("{{", "{%")


def resolve_hosts(graph: Graph, source_dirs: list[Path], vars_dirs: VarsDirs) -> list[HostSpec]:
    """One spec per host, in the order hosts were first written."""
    membership = graph.membership()
    specs: list[HostSpec] = []
    jumps: dict[str, tuple[Jump, Value]] = {}
    for name, entry in graph.hosts.items():
        groups = sorted(
            membership[name] - {"all"},
            key=lambda g: (graph.groups[g].depth, graph.groups[g].priority, g),
        )
        # A relative path (a key file) is relative to the file that says it, or for
        # group_vars/ and host_vars/, to the inventory source they belong to.
        layers: list[tuple[dict[str, Value], Path | None]] = [(graph.groups["all"].vars, None)]
        layers += [(graph.groups[g].vars, None) for g in groups]
        layers += [(vars_dirs.vars_for(d, "group_vars", "all"), d) for d in source_dirs]
        layers += [(vars_dirs.vars_for(d, "group_vars", g), d) for d in source_dirs for g in groups]
        layers.append((entry.vars, None))
        layers += [(vars_dirs.vars_for(d, "host_vars", name), d) for d in source_dirs]
        merged = {k: (v, b) for values, b in layers for k, v in values.items()}
        where = entry.where
        spec = HostSpec(name, where.reader.loc(where.node), groups=tuple(groups))
        for var, ours in VAR_MAP.items():
            if var in merged:
                value, value_base = merged[var]
                value_base = value_base or Path(value.reader.file).parent
                if ours == "via":
                    jump = _jump(spec, var, value)
                    if jump is not None:
                        jumps[name] = (jump, value)
                else:
                    _put(spec, var, ours, value, value_base)
        specs.append(spec)
    _match_jumps(specs, jumps)
    return specs


def _templated(value: Value, path: str) -> bool:
    """True (and a problem) when the value is a Jinja template, which only Ansible can fill."""
    node = value.node
    if isinstance(node, yaml.ScalarNode) and any(j in str(node.value) for j in _JINJA):
        value.reader.fail(
            node,
            path,
            "Jinja templates are not evaluated here; write the value itself "
            "(or an environment reference like ${VAR})",
        )
        return True
    return False


def _jump(spec: HostSpec, var: str, value: Value) -> Jump | None:
    path = value.path(var)
    if _templated(value, path):
        return None
    text = value.reader.string(value.node, path)
    if text is None:
        return None
    try:
        return jump_of(text)
    except JumpError as exc:
        value.reader.fail(value.node, path, str(exc))
        return None


def _put(spec: HostSpec, var: str, ours: str, value: Value, base: Path) -> None:
    reader, node = value.reader, value.node
    path = value.path(var)
    if _templated(value, path):
        return
    result: object
    if ours == "connection":
        result = _connection(value, path)
    else:
        result = read_field(reader, ours, node, path, base)
    if result is not None:
        spec.put(ours, result, node, f"{path} in {reader.file}")


def _match_jumps(specs: list[HostSpec], jumps: dict[str, tuple[Jump, Value]]) -> None:
    """A jump names a host of the inventory by its name, or by its address (and port)."""
    by_name = {s.name: s for s in specs}
    for spec in specs:
        if spec.name not in jumps:
            continue
        jump, value = jumps[spec.name]
        path = value.path("ansible_ssh_common_args")
        target = by_name.get(jump.host) or next(
            (
                s
                for s in specs
                if s.values.get("address") == jump.host
                and jump.port in (None, s.values.get("port", 22))
            ),
            None,
        )
        # The jump's own user and port are the jump host's settings: they must agree.
        conflicts = []
        if target is not None and jump.user is not None:
            have = target.values.get("user")
            if have != jump.user:
                conflicts.append(
                    f"user {jump.user} but {target.name} has "
                    + (f"user {have}" if have is not None else "no ansible_user")
                )
        if target is not None and jump.port is not None:
            port = target.values.get("port", 22)
            if port != jump.port:
                conflicts.append(f"port {jump.port} but {target.name} has port {port}")
        if conflicts:
            value.reader.fail(
                value.node, path, f"the jump host is given {'; '.join(conflicts)}: make them agree"
            )
            continue
        # Not one of these hosts: the loader looks among `hosts:` too, and names it if missing.
        via = target.name if target is not None else jump.host
        spec.put("via", via, value.node, f"{path} in {value.reader.file}")


def _connection(value: Value, path: str) -> str | None:
    text = value.reader.string(value.node, path)
    if text is None:
        return None
    if text not in _CONNECTIONS:
        shown = value.reader.shown(value.node, text)
        value.reader.fail(
            value.node, path, f"connection {shown} is not supported; use ssh or local"
        )
        return None
    return _CONNECTIONS[text]
