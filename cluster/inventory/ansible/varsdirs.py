"""`group_vars/` and `host_vars/` beside an inventory source, found as Ansible finds them.

For a name, the first of `NAME`, `NAME.yml`, `NAME.yaml`, `NAME.json` that exists is
used; a directory of that name contributes every file below it (sorted, recursively,
skipping hidden files and `~` backups, only YAML/JSON extensions or none), later files
overriding earlier ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cluster.errors import Problem
from cluster.inventory.ansible.graph import Value
from cluster.inventory.yamlread import Reader

EXTENSIONS = ("", ".yml", ".yaml", ".json")


@dataclass
class VarsDirs:
    """Reads each vars file once, however many sources and hosts ask for it."""

    env: dict[str, str]
    readers: list[Reader] = field(default_factory=list)
    _cache: dict[Path, dict[str, Value]] = field(default_factory=dict)

    def vars_for(self, source_dir: Path, kind: str, name: str) -> dict[str, Value]:
        """Variables for group or host `name` (`kind` is group_vars or host_vars)."""
        merged: dict[str, Value] = {}
        if name.startswith("/"):
            return merged
        for path in _files(source_dir / kind, name):
            merged.update(self._read(path))
        return merged

    def _read(self, path: Path) -> dict[str, Value]:
        cached = self._cache.get(path)
        if cached is not None:
            return cached
        reader = Reader(str(path), self.env)
        self.readers.append(reader)
        out: dict[str, Value] = {}
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reader.problems.append(Problem(reader.file, 1, 1, "", f"cannot read: {exc}"))
            text = ""
        root = reader.compose(text) if text.strip() else None
        if root is not None:
            for key, (_, node) in (reader.mapping(root, "") or {}).items():
                out[key] = Value(reader, node)
        self._cache[path] = out
        return out


def _files(folder: Path, name: str) -> list[Path]:
    if not folder.is_dir():
        return []
    for ext in EXTENSIONS:
        candidate = folder / f"{name}{ext}"
        if candidate.is_dir():
            return _dir_files(candidate)
        if candidate.exists():
            return [candidate]
    return []


def _dir_files(folder: Path) -> list[Path]:
    out: list[Path] = []
    for child in sorted(folder.iterdir(), key=lambda p: p.name):
        if child.name.startswith(".") or child.name.endswith("~"):
            continue
        if child.is_dir() and not child.suffix:
            out.extend(_dir_files(child))
        elif child.is_file() and child.suffix in EXTENSIONS:
            out.append(child)
    return out
