"""An Ansible inventory as Ansible builds it: groups, their children and hosts, their vars.

Every source (YAML or INI file) adds to one graph, as `ansible-inventory -i A -i B` does;
`finish` then reconciles it the way Ansible does (parentless groups under `all`, hosts in
no group under `ungrouped`) and computes each group's depth, which orders variables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from cluster.inventory.yamlread import Reader

# Ansible's own default for a group without `ansible_group_priority`.
DEFAULT_PRIORITY = 1


@dataclass(frozen=True)
class Value:
    """A variable as written: its node, and the reader of the file it is in (for messages)."""

    reader: Reader
    node: yaml.Node
    # Whose it is as written ("web:vars", "db[1:3]"; "" in a vars file), so a problem with
    # a value shared by many hosts is reported once, where it is written.
    owner: str = ""

    def path(self, var: str) -> str:
        return f"{self.owner}.{var}" if self.owner else var


@dataclass
class Group:
    name: str
    vars: dict[str, Value] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    priority: int = DEFAULT_PRIORITY
    depth: int = 0


@dataclass
class HostEntry:
    """A host where it is first written, with its own (inline) variables."""

    name: str
    where: Value
    vars: dict[str, Value] = field(default_factory=dict)


@dataclass
class Graph:
    groups: dict[str, Group] = field(default_factory=dict)
    hosts: dict[str, HostEntry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.group("all")
        self.group("ungrouped")

    def group(self, name: str) -> Group:
        return self.groups.setdefault(name, Group(name))

    def add_host(self, name: str, group: str, where: Value) -> HostEntry:
        entry = self.hosts.get(name)
        if entry is None:
            entry = self.hosts[name] = HostEntry(name, where)
        members = self.group(group).hosts
        if name not in members:
            members.append(name)
        return entry

    def add_hosts(
        self, names: list[str], group: str, where: Value, host_vars: dict[str, Value]
    ) -> None:
        """The hosts of one pattern in `group`, each given the pattern's variables."""
        for name in names:
            self.add_host(name, group, where).vars.update(host_vars)

    def set_group_var(self, group: str, key: str, value: Value, priority: int | None) -> None:
        g = self.group(group)
        g.vars[key] = value
        if priority is not None:
            g.priority = priority

    def add_child(self, parent: str, child: str) -> bool:
        """Nest `child` under `parent`; False (nothing changed) when that would be a cycle."""
        if child == parent or self.contains(child, parent):
            return False
        self.group(child)
        children = self.group(parent).children
        if child not in children:
            children.append(child)
        return True

    def contains(self, outer: str, inner: str) -> bool:
        """True when `inner` is `outer` or nested anywhere below it."""
        seen: set[str] = set()
        stack = [outer]
        while stack:
            g = stack.pop()
            if g == inner:
                return True
            if g in seen or g not in self.groups:
                continue
            seen.add(g)
            stack.extend(self.groups[g].children)
        return False

    def finish(self) -> None:
        """Ansible's reconcile: parentless groups go under `all`, groupless hosts under
        `ungrouped` (and leave it once in another group); then every group's depth."""
        has_parent = {c for g in self.groups.values() for c in g.children}
        for name in self.groups:
            if name != "all" and name not in has_parent:
                self.groups["all"].children.append(name)
        grouped = {
            h for g in self.groups.values() if g.name not in ("all", "ungrouped") for h in g.hosts
        }
        ungrouped = self.groups["ungrouped"]
        ungrouped.hosts = [h for h in ungrouped.hosts if h not in grouped]
        ungrouped.hosts += [h for h in self.hosts if h not in grouped and h not in ungrouped.hosts]
        self._set_depths()

    def _set_depths(self) -> None:
        """Each group's depth: its longest path down from `all` (children are acyclic)."""
        order: list[str] = []
        done: set[str] = set()
        for start in self.groups:
            stack: list[tuple[str, bool]] = [(start, False)]
            while stack:
                name, leaving = stack.pop()
                if leaving:
                    order.append(name)
                    continue
                if name in done:
                    continue
                done.add(name)
                stack.append((name, True))
                stack.extend((c, False) for c in self.groups[name].children if c not in done)
        for name in reversed(order):  # parents before their children
            for child in self.groups[name].children:
                child_group = self.groups[child]
                child_group.depth = max(child_group.depth, self.groups[name].depth + 1)

    def membership(self) -> dict[str, set[str]]:
        """Each host's groups: a host in a child group belongs to every ancestor too."""
        parents: dict[str, set[str]] = {}
        for g in self.groups.values():
            for child in g.children:
                parents.setdefault(child, set()).add(g.name)
        out: dict[str, set[str]] = {h: {"all"} for h in self.hosts}
        for g in self.groups.values():
            for host in g.hosts:
                closure = out[host]
                stack = [g.name]
                while stack:
                    cur = stack.pop()
                    if cur in closure:
                        continue
                    closure.add(cur)
                    stack.extend(parents.get(cur, ()))
        return out
