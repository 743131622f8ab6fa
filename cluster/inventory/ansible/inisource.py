"""Ansible's INI inventory format (its default, `/etc/ansible/hosts` style) into the graph.

Read line by line as Ansible's `ini` plugin reads it: hosts before any section are
ungrouped; `[group]` lists hosts (`name key=value ...`, shell-quoted, `#` comments),
`[group:vars]` one `key=value` per line, `[group:children]` group names. Values are
Python literals where they parse as one (`2222` is a number), else text. Errors name
file:line, as INI has no columns worth pointing at.
"""

from __future__ import annotations

import ast
import re
import shlex
import warnings

import yaml

from cluster.inventory.ansible.graph import Graph, Value
from cluster.inventory.ansible.yamlsource import PRIORITY_VAR, expand_pattern
from cluster.inventory.yamlread import Reader

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$")
_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:#.*)?$")
_TAGS = {
    int: "tag:yaml.org,2002:int",
    float: "tag:yaml.org,2002:float",
    bool: "tag:yaml.org,2002:bool",
    type(None): "tag:yaml.org,2002:null",
}
_STR_TAG = "tag:yaml.org,2002:str"


def line_node(reader: Reader, line: int, text: str, tag: str = _STR_TAG) -> yaml.ScalarNode:
    """A scalar placed at `line` with no column, so messages read file:line."""
    mark = yaml.Mark(reader.file, 0, line - 1, -1, None, 0)
    return yaml.ScalarNode(tag, text, mark, mark)


def read_ini_source(reader: Reader, text: str, graph: Graph) -> None:
    """Add one INI inventory to `graph`; problems go to `reader` with their line."""
    group, state = "ungrouped", "hosts"
    # [g:vars] may come before [g]; [p:children] may name a group declared further down.
    pending_vars: dict[str, int] = {}
    pending_children: dict[str, list[tuple[str, int]]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue

        def fail(message: str, path: str = "", number: int = number) -> None:
            reader.fail(line_node(reader, number, ""), path, message)

        m = _SECTION.match(line)
        if m:
            group, state = m.group(1), m.group(2) or "hosts"
            if state not in ("hosts", "children", "vars"):
                fail(f"section [{group}:{state}] has unknown type '{state}'; "
                     "expected [group], [group:vars] or [group:children]")  # fmt: skip
                state = "skip"
                continue
            if group not in graph.groups:
                if state == "vars":
                    pending_vars.setdefault(group, number)
                graph.group(group)
            if state != "vars":
                pending_vars.pop(group, None)
                for parent, _ in pending_children.pop(group, []):
                    graph.add_child(parent, group)
            continue
        if line.startswith("[") and line.endswith("]"):
            fail(f"invalid section '{line}': no spaces, and [group], [group:vars] or "
                 "[group:children]")  # fmt: skip
            state = "skip"
            continue
        if state == "hosts":
            _host_line(reader, graph, group, line, number)
        elif state == "vars":
            key, eq, value = line.partition("=")
            key, value = key.strip(), value.strip()
            if not eq or not key:
                fail(f"expected key=value, got '{line}'", f"{group}:vars")
                continue
            node = value_node(reader, number, value)
            priority = None
            if key == PRIORITY_VAR:
                priority = reader.integer(node, f"{group}.vars.{key}", -(10**9), 10**9)
            graph.set_group_var(group, key, Value(reader, node, f"{group}:vars"), priority)
        elif state == "children":
            cm = _GROUP_NAME.match(line)
            if cm is None:
                fail(f"expected a group name, got '{line}'", f"{group}:children")
                continue
            child = cm.group(1)
            if child not in graph.groups:
                pending_children.setdefault(child, []).append((group, number))
            elif not graph.add_child(group, child):
                fail(f"group cycle: '{child}' already contains '{group}'", f"{group}:children")
    for name, number in pending_vars.items():
        reader.fail(
            line_node(reader, number, ""),
            f"{name}:vars",
            f"section [{name}:vars] is for a group that is not declared anywhere",
        )
    for child, parents in pending_children.items():
        parent, number = parents[-1]
        reader.fail(
            line_node(reader, number, ""),
            f"{parent}:children",
            f"section [{parent}:children] names group '{child}', which is not declared anywhere",
        )


def _host_line(reader: Reader, graph: Graph, group: str, line: str, number: int) -> None:
    """`name-or-pattern[:port] key=value ...` (a trailing `# comment` is ignored)."""
    where = line_node(reader, number, "")
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError as exc:
        reader.fail(where, group, f"cannot read host line '{line}': {exc}")
        return
    if not tokens:
        return
    pattern = tokens[0]
    if pattern.endswith(":"):
        reader.fail(where, pattern, "a host pattern cannot end in ':' (that is for a port)")
        return
    written: dict[str, Value] = {}
    for token in tokens[1:]:
        key, eq, value = token.partition("=")
        if not eq:
            reader.fail(where, pattern, f"expected key=value host variable, got '{token}'")
            return
        written[key] = Value(reader, value_node(reader, number, value), pattern)
    names = expand_pattern(reader, where, pattern, pattern)
    if names is None:
        return
    hosts, port = names
    # A port on the pattern is a host var; one written as ansible_port= after it wins.
    host_vars: dict[str, Value] = {}
    if port is not None:
        host_vars["ansible_port"] = Value(
            reader, line_node(reader, number, str(port), _TAGS[int]), pattern
        )
    host_vars.update(written)
    graph.add_hosts(hosts, group, Value(reader, where), host_vars)


def value_node(reader: Reader, line: int, text: str) -> yaml.ScalarNode:
    """An INI value typed as Ansible types it: a Python literal where it is one, else text."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return line_node(reader, line, text)
    if isinstance(value, bool):
        return line_node(reader, line, "true" if value else "false", _TAGS[bool])
    tag = _TAGS.get(type(value))
    if tag is not None:
        return line_node(reader, line, "" if value is None else str(value), tag)
    return line_node(reader, line, value if isinstance(value, str) else repr(value))
