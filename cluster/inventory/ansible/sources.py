"""The files `ansible_inventory:` names, each read as YAML or INI by what it holds."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from cluster.inventory.ansible.graph import Graph
from cluster.inventory.ansible.inisource import read_ini_source
from cluster.inventory.ansible.resolve import resolve_hosts
from cluster.inventory.ansible.varsdirs import VarsDirs
from cluster.inventory.ansible.yamlsource import read_yaml_source
from cluster.inventory.hostfields import HostSpec
from cluster.inventory.yamlread import Reader

YAML_SUFFIXES = (".yml", ".yaml", ".json")
# A line that only INI has: `[group]`, `[group:vars]`, `[group:children]` at the margin.
_INI_SECTION = re.compile(r"^\[[^\]\s:]+(?::\w+)?\]\s*(?:[#;].*)?$", re.M)
_VARS_DIRS = ("group_vars", "host_vars", "vars_plugins")
# In a directory source, files Ansible skips (its INVENTORY_IGNORE_EXTS).
_IGNORED = (".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig",
            ".cfg", ".retry")  # fmt: skip


def read_ansible(reader: Reader, node: yaml.Node, base: Path) -> list[HostSpec]:
    """Host specs from every Ansible inventory `node` names (a path or a list of paths)."""
    items = (
        reader.sequence(node, "ansible_inventory")
        if isinstance(node, yaml.SequenceNode)
        else [node]
    )
    graph = Graph()
    readers: list[Reader] = []
    source_dirs: list[Path] = []
    for i, item in enumerate(items or []):
        field = (
            "ansible_inventory"
            if len(items or []) == 1 and item is node
            else f"ansible_inventory[{i}]"
        )
        path = reader.path(item, field, base)
        if path is None:
            continue
        if path.is_dir():
            files = _dir_sources(path)
            if not files:
                reader.fail(item, field, f"the directory {path} holds no inventory file")
            source_dirs.append(path)
        else:
            files = [path]
            source_dirs.append(path.parent)
        for file in files:
            sub = Reader(str(file), reader.env)
            readers.append(sub)
            if not _read_source(reader, item, field, sub, file, graph):
                reader.fail(item, field, f"the Ansible inventory {file} is empty")
    graph.finish()
    vars_dirs = VarsDirs(reader.env)
    specs = resolve_hosts(graph, source_dirs, vars_dirs)
    for sub in [*readers, *vars_dirs.readers]:
        reader.problems.extend(sub.problems)
    return specs


def _read_source(
    reader: Reader, item: yaml.Node, field: str, sub: Reader, path: Path, graph: Graph
) -> bool:
    """Add one file to the graph; False when it holds nothing at all."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reader.fail(item, field, f"cannot read {path}: {exc}")
        return True
    if not any(line.strip() and line.lstrip()[0] not in "#;" for line in text.splitlines()):
        return False
    if _is_ini(path, text):
        read_ini_source(sub, text, graph)
        return True
    root = sub.compose(text)
    if root is not None:
        read_yaml_source(sub, root, graph)
    return root is not None or bool(sub.problems)


def _is_ini(path: Path, text: str) -> bool:
    """INI when it says so (`.ini`), has an INI section line, or is not a YAML mapping."""
    if path.suffix == ".ini" or _INI_SECTION.search(text):
        return True
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        # Broken YAML in a file named as YAML is reported as YAML; anything else is INI.
        return path.suffix not in YAML_SUFFIXES
    return not isinstance(root, yaml.MappingNode)


def _dir_sources(folder: Path) -> list[Path]:
    """The inventory files of a directory source, below it too, as Ansible walks it."""
    out: list[Path] = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        name = entry.name
        if name.startswith(".") or name in _VARS_DIRS or name.endswith(_IGNORED):
            continue
        if entry.is_dir():
            out.extend(_dir_sources(entry))
        elif entry.is_file():
            out.append(entry)
    return out
