"""Ansible's YAML inventory format into the graph: groups at the top level (`all:` or not),
`hosts`, `vars` and `children` under each, host patterns with ranges and ports."""

from __future__ import annotations

import yaml

from cluster.inventory.ansible.graph import Graph, Value
from cluster.inventory.ansible.ranges import RangeError, expand, split_port
from cluster.inventory.hostfields import NAME_RE
from cluster.inventory.yamlread import Reader

GROUP_KEYS = ("hosts", "vars", "children")
PRIORITY_VAR = "ansible_group_priority"
_NULL_TAG = "tag:yaml.org,2002:null"
_INT_TAG = "tag:yaml.org,2002:int"


def read_yaml_source(reader: Reader, root: yaml.Node, graph: Graph) -> None:
    """Add one YAML inventory (already composed) to `graph`; problems go to `reader`."""
    top = reader.mapping(root, "")
    if top is None:
        return
    if "plugin" in top:
        reader.fail(
            top["plugin"][0],
            "plugin",
            "this is a dynamic inventory plugin's configuration, not an inventory; "
            "export its hosts with `ansible-inventory -i FILE --list -y > hosts.yml`",
        )
        return
    walked: set[tuple[str, int]] = set()
    for name, (_, node) in top.items():
        _walk(reader, name, node, name, graph, walked)


def _walk(
    reader: Reader,
    name: str,
    node: yaml.Node,
    path: str,
    graph: Graph,
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
    graph.group(name)
    if "vars" in pairs:
        for key, (_, value_node) in _section(reader, pairs["vars"][1], f"{path}.vars").items():
            priority = None
            if key == PRIORITY_VAR:
                priority = reader.integer(value_node, f"{path}.vars.{key}", -(10**9), 10**9)
            graph.set_group_var(name, key, Value(reader, value_node, f"{name}.vars"), priority)
    if "hosts" in pairs:
        hosts = _section(reader, pairs["hosts"][1], f"{path}.hosts")
        for pattern, (key_node, value_node) in hosts.items():
            _add_hosts(reader, graph, name, pattern, key_node, value_node, f"{path}.hosts")
    if "children" in pairs:
        children = _section(reader, pairs["children"][1], f"{path}.children")
        for child, (key_node, child_node) in children.items():
            child_path = f"{path}.children.{child}"
            if not graph.add_child(name, child):
                reader.fail(
                    key_node,
                    child_path,
                    f"group cycle: '{child}' already contains '{name}'",
                )
                continue
            _walk(reader, child, child_node, child_path, graph, walked)


def _section(reader: Reader, node: yaml.Node, path: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """A `hosts`/`vars`/`children` mapping; a lone name stands for `{name: }` as in Ansible."""
    if isinstance(node, yaml.ScalarNode) and node.tag != _NULL_TAG and node.value != "":
        empty = yaml.ScalarNode(_NULL_TAG, "", node.start_mark, node.end_mark)
        return {str(node.value): (node, empty)}
    return reader.mapping(node, path) or {}


def _add_hosts(
    reader: Reader,
    graph: Graph,
    group: str,
    pattern: str,
    key_node: yaml.Node,
    value_node: yaml.Node,
    path: str,
) -> None:
    """One `hosts:` entry: a name or a pattern (`web[01:03]`, `db:2222`) and its vars."""
    host_path = f"{path}.{pattern}"
    host_vars = reader.mapping(value_node, host_path)
    if host_vars is None:
        return
    names = expand_pattern(reader, key_node, host_path, pattern)
    if names is None:
        return
    hosts, port = names
    # A port on the pattern is a host var; one written as ansible_port under it wins.
    values: dict[str, Value] = {}
    if port is not None:
        port_node = yaml.ScalarNode(_INT_TAG, str(port), key_node.start_mark, key_node.end_mark)
        values["ansible_port"] = Value(reader, port_node, pattern)
    values.update(
        (key, Value(reader, var_node, pattern)) for key, (_, var_node) in host_vars.items()
    )
    graph.add_hosts(hosts, group, Value(reader, key_node), values)


def expand_pattern(
    reader: Reader, node: yaml.Node, path: str, pattern: str
) -> tuple[list[str], int | None] | None:
    """Host names and port of a pattern; None (and a problem at `node`) when it is wrong."""
    text, port = split_port(pattern)
    try:
        hosts = expand(text)
    except RangeError as exc:
        reader.fail(node, path, str(exc))
        return None
    bad = [h for h in hosts if not NAME_RE.match(h)]
    if bad:
        reader.fail(
            node, path, f"host name '{bad[0]}': host names use letters, digits, '.', '_' and '-'"
        )
        return None
    if port is not None and not 1 <= port <= 65535:
        reader.fail(node, path, f"port must be between 1 and 65535, got {port}")
        return None
    return hosts, port
