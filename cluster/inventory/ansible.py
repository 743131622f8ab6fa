"""Hosts from an Ansible YAML inventory, with group vars inherited the way Ansible does.

Precedence, lowest first: `all` vars, then every group the host belongs to ordered by
depth from `all` and then by name (deeper and later groups win), then the host's own vars.
When a host ends up with both a variable and its older `ansible_ssh_*` alias, the alias
wins, as in Ansible's ssh connection plugin (the last name it lists for a setting wins).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cluster.inventory.hostfields import NAME_RE, HostSpec, read_field
from cluster.inventory.yamlread import Reader

GROUP_KEYS = ("hosts", "vars", "children")
# Ansible variable -> our host field, applied in this order (later names win).
VAR_MAP = {
    "ansible_host": "address",
    "ansible_ssh_host": "address",
    "ansible_user": "user",
    "ansible_ssh_user": "user",
    "ansible_port": "port",
    "ansible_ssh_port": "port",
    "ansible_ssh_private_key_file": "key_file",
    "ansible_connection": "connection",
    "ansible_python_interpreter": "python",
    "ansible_password": "password",
    "ansible_ssh_pass": "password",
    "ansible_ssh_password": "password",
    "ansible_private_key_passphrase": "key_passphrase",
}
# Ansible connection plugins we can honour.
_CONNECTIONS = {"ssh": "ssh", "paramiko": "ssh", "smart": "ssh", "local": "local"}
# Jinja expression and statement openers: Ansible would template these; we cannot.
_JINJA = ("{{", "{%")


@dataclass
class _Group:
    name: str
    depth: int
    vars: dict[str, yaml.Node] = field(default_factory=dict)
    hosts: dict[str, dict[str, yaml.Node]] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)


def read_ansible(reader: Reader, root: yaml.Node, base: Path) -> list[HostSpec]:
    """Host specs from a composed Ansible inventory; problems go to `reader`."""
    top = reader.mapping(root, "", ("all",))
    if top is None:
        return []
    if "all" not in top:
        reader.fail(root, "all", "an Ansible YAML inventory starts with 'all:'")
        return []
    groups: dict[str, _Group] = {}
    _walk(reader, "all", top["all"][1], "all", groups, set())
    _set_depths(groups)
    membership = _membership(groups)
    first_seen: dict[str, yaml.Node] = {}
    for group in groups.values():
        for host, host_vars in group.hosts.items():
            first_seen.setdefault(host, host_vars.get("__node__", top["all"][1]))
    specs: list[HostSpec] = []
    for host, node in first_seen.items():
        member_of = sorted(membership[host], key=lambda g: (groups[g].depth, g))
        merged: dict[str, yaml.Node] = {}
        for g in member_of:
            merged.update(groups[g].vars)
        for g in member_of:
            merged.update(
                {k: v for k, v in groups[g].hosts.get(host, {}).items() if k != "__node__"}
            )
        spec = HostSpec(host, reader.loc(node), groups=tuple(g for g in member_of if g != "all"))
        # Other Ansible vars (become, etc.) mean nothing to us.
        for var, ours in VAR_MAP.items():
            if var not in merged:
                continue
            value_node = merged[var]
            path = f"{host}.{var}"
            value: object
            if _is_template(value_node):
                reader.fail(
                    value_node,
                    path,
                    "Jinja templates are not evaluated here; write the value itself "
                    "(or an environment reference like ${VAR})",
                )
                continue
            if ours == "connection":
                value = _connection(reader, value_node, path)
            else:
                value = read_field(reader, ours, value_node, path, base)
            if value is not None:
                spec.put(ours, value, value_node, f"{path} in {reader.file}")
        specs.append(spec)
    return specs


def _walk(
    reader: Reader,
    name: str,
    node: yaml.Node,
    path: str,
    groups: dict[str, _Group],
    walked: set[tuple[str, int]],
) -> None:
    """Record group `name` as written at `node`, then its children.

    A group reached again through the same (aliased) node is not walked again: ten
    aliases at each of five levels would otherwise mean 10**5 walks.
    """
    if (name, id(node)) in walked:
        return
    walked.add((name, id(node)))
    pairs = reader.mapping(node, path, GROUP_KEYS)
    if pairs is None:
        return
    group = groups.setdefault(name, _Group(name, 0))
    if "vars" in pairs:
        var_pairs = reader.mapping(pairs["vars"][1], f"{path}.vars")
        for key, (_, value_node) in (var_pairs or {}).items():
            group.vars[key] = value_node
    if "hosts" in pairs:
        host_pairs = reader.mapping(pairs["hosts"][1], f"{path}.hosts")
        for host, (key_node, value_node) in (host_pairs or {}).items():
            if not NAME_RE.match(host):
                reader.fail(
                    key_node,
                    f"{path}.hosts.{host}",
                    "host names use letters, digits, '.', '_' and '-'",
                )
                continue
            host_vars = reader.mapping(value_node, f"{path}.hosts.{host}") or {}
            entry = group.hosts.setdefault(host, {"__node__": key_node})
            entry.update({k: v for k, (_, v) in host_vars.items()})
    if "children" in pairs:
        child_pairs = reader.mapping(pairs["children"][1], f"{path}.children")
        for child, (_, child_node) in (child_pairs or {}).items():
            if child == name or _is_ancestor(groups, child, name):
                reader.fail(child_node, f"{path}.children.{child}", "group cycle")
                continue
            if child not in group.children:
                group.children.append(child)
            _walk(reader, child, child_node, f"{path}.children.{child}", groups, walked)


def _set_depths(groups: dict[str, _Group]) -> None:
    """Each group's depth: its longest path down from `all` (children are acyclic)."""
    order: list[str] = []
    state: dict[str, bool] = {}  # False while visiting, True when done
    for start in groups:
        stack: list[tuple[str, bool]] = [(start, False)]
        while stack:
            name, leaving = stack.pop()
            if leaving:
                state[name] = True
                order.append(name)
                continue
            if name in state or name not in groups:
                continue
            state[name] = False
            stack.append((name, True))
            stack.extend((c, False) for c in groups[name].children if c not in state)
    for name in reversed(order):  # parents before their children
        for child in groups[name].children:
            if child in groups:
                groups[child].depth = max(groups[child].depth, groups[name].depth + 1)


def _is_ancestor(groups: dict[str, _Group], candidate: str, name: str) -> bool:
    """True when `candidate` already contains `name`, so nesting it under `name` loops."""
    seen: set[str] = set()
    stack = [candidate]
    while stack:
        g = stack.pop()
        if g == name:
            return True
        if g in seen or g not in groups:
            continue
        seen.add(g)
        stack.extend(groups[g].children)
    return False


def _membership(groups: dict[str, _Group]) -> dict[str, set[str]]:
    """Each host's groups: a host in a child group belongs to every ancestor too."""
    parents: dict[str, set[str]] = {}
    for g in groups.values():
        for child in g.children:
            parents.setdefault(child, set()).add(g.name)
    out: dict[str, set[str]] = {}
    for g in groups.values():
        for host in g.hosts:
            closure = out.setdefault(host, set())
            stack = [g.name]
            while stack:
                cur = stack.pop()
                if cur in closure:
                    continue
                closure.add(cur)
                stack.extend(parents.get(cur, ()))
    for closure in out.values():
        closure.add("all")
    return out


def _connection(reader: Reader, node: yaml.Node, path: str) -> str | None:
    value = reader.string(node, path)
    if value is None:
        return None
    if value not in _CONNECTIONS:
        shown = reader.shown(node, value)
        reader.fail(node, path, f"connection {shown} is not supported; use ssh or local")
        return None
    return _CONNECTIONS[value]


def _is_template(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and any(j in str(node.value) for j in _JINJA)
