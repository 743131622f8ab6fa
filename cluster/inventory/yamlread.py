"""Typed reads from composed YAML nodes, so every error can name file:line:column.

We compose (not load) the YAML: nodes keep their positions, duplicate keys are seen
instead of silently overwritten, and no constructor ever runs arbitrary tags.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cluster.errors import InventoryError, Problem

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MERGE_TAG = "tag:yaml.org,2002:merge"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_NULL_TAG = "tag:yaml.org,2002:null"
_MAX_DEPTH = 64
# Merge keys can alias one mapping many times over; past this many merged pairs the file
# is a "billion laughs" style bomb (or a mistake), not an inventory.
MAX_MERGED_PAIRS = 100_000


@dataclass(frozen=True)
class Loc:
    """A place in a file, 1-based like editors show it."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" + (f":{self.column}" if self.column else "")


@dataclass
class Reader:
    """Collects problems while reading; callers check `problems` once at the end."""

    file: str
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    problems: list[Problem] = field(default_factory=list)
    # Merged pairs per mapping node (by id): aliases share nodes, so each is expanded once.
    _merged: dict[int, list[tuple[yaml.Node, yaml.Node]]] = field(default_factory=dict, repr=False)
    _merging: set[int] = field(default_factory=set, repr=False)
    _merged_total: int = field(default=0, repr=False)
    _merge_bomb: bool = field(default=False, repr=False)

    # -- parsing --------------------------------------------------------------------
    def compose(self, text: str) -> yaml.Node | None:
        """Parse text into a node tree; a syntax error becomes a located problem."""
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            msg = " ".join(str(part) for part in (exc.context, exc.problem) if part)
            self.problems.append(Problem(self.file, line, col, "", f"invalid YAML: {msg}"))
            return None
        except yaml.YAMLError as exc:  # reader errors (bad bytes) carry no mark
            self.problems.append(Problem(self.file, 1, 1, "", f"invalid YAML: {exc}"))
            return None
        except RecursionError:
            self.problems.append(Problem(self.file, 1, 1, "", "invalid YAML: nested too deeply"))
            return None
        return node

    # -- problems -------------------------------------------------------------------
    def loc(self, node: yaml.Node) -> Loc:
        mark = node.start_mark
        return Loc(self.file, mark.line + 1, mark.column + 1)

    def fail(self, node: yaml.Node, path: str, message: str) -> None:
        loc = self.loc(node)
        self.problems.append(Problem(self.file, loc.line, loc.column, path, message))

    def raise_if_problems(self) -> None:
        """Raise every problem once (an aliased node can report the same one repeatedly)."""
        if self.problems:
            unique = list(dict.fromkeys(self.problems))
            raise InventoryError(sorted(unique, key=lambda p: (p.file, p.line, p.column)))

    # -- structure ------------------------------------------------------------------
    def mapping(
        self, node: yaml.Node, path: str, allowed: tuple[str, ...] | None = None
    ) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
        """A mapping with string keys; duplicates and unknown keys are reported."""
        if isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG:
            return {}
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, path, f"expected a mapping, got {_kind(node)}")
            return None
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in self._merged_pairs(node, path, depth=0):
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _NULL_TAG:
                self.fail(key_node, path, f"keys must be plain strings, got {_kind(key_node)}")
                continue
            key = str(key_node.value)
            sub = f"{path}.{key}" if path else key
            if key in out:
                first = self.loc(out[key][0])
                self.fail(
                    key_node, sub, f"duplicate key '{key}' (first defined at line {first.line})"
                )
                continue
            if allowed is not None and key not in allowed:
                self.fail(key_node, sub, f"unknown key '{key}'{suggest(key, allowed)}")
                continue
            out[key] = (key_node, value_node)
        return out

    def _merged_pairs(
        self, node: yaml.MappingNode, path: str, depth: int
    ) -> list[tuple[yaml.Node, yaml.Node]]:
        """Pairs of a mapping with YAML merge keys (`<<: *base`) applied, own keys first.

        Memoised per node: an anchor merged ten times at each of nine levels would
        otherwise be expanded 10**9 times. The total is capped for the same reason.
        """
        cached = self._merged.get(id(node))
        if cached is not None:
            return cached
        if id(node) in self._merging:
            self.fail(node, path, "a merge key (<<) refers to the mapping it is in")
            return []
        if depth > _MAX_DEPTH:
            self.fail(node, path, "merge keys nested too deeply")
            return []
        self._merging.add(id(node))
        try:
            out = self._merge_into(node, path, depth)
        finally:
            self._merging.discard(id(node))
        self._merged[id(node)] = out
        return out

    def _merge_into(
        self, node: yaml.MappingNode, path: str, depth: int
    ) -> list[tuple[yaml.Node, yaml.Node]]:
        own: list[tuple[yaml.Node, yaml.Node]] = []
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                own.append((key_node, value_node))
                continue
            sources = (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
            for src in sources:
                if not isinstance(src, yaml.MappingNode):
                    self.fail(src, path, "a merge key (<<) must name a mapping")
                    continue
                pairs = self._merged_pairs(src, path, depth + 1)
                self._merged_total += len(pairs)
                if self._merged_total > MAX_MERGED_PAIRS:
                    if not self._merge_bomb:
                        self._merge_bomb = True
                        self.fail(
                            key_node,
                            path,
                            f"too many merged keys (over {MAX_MERGED_PAIRS:,} from merge keys "
                            "'<<'); flatten the anchors",
                        )
                    return []
                merged.extend(pairs)
        names = {str(k.value) for k, _ in own if isinstance(k, yaml.ScalarNode)}
        out = list(own)
        for key_node, value_node in merged:
            key = str(key_node.value)
            if key not in names:
                names.add(key)
                out.append((key_node, value_node))
        return out

    def sequence(self, node: yaml.Node, path: str) -> list[yaml.Node] | None:
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, path, f"expected a list, got {_kind(node)}")
            return None
        return list(node.value)

    # -- scalars --------------------------------------------------------------------
    def string(self, node: yaml.Node, path: str, *, expand_env: bool = True) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag == _NULL_TAG:
            self.fail(node, path, f"expected a string, got {_kind(node)}")
            return None
        text = str(node.value)
        if not expand_env:
            return text
        return self._expand(node, path, text)

    def _expand(self, node: yaml.Node, path: str, text: str) -> str | None:
        missing = [name for name in ENV_REF.findall(text) if name not in self.env]
        if missing:
            names = ", ".join(f"${{{m}}}" for m in missing)
            self.fail(node, path, f"environment variable {names} is not set")
            return None
        return ENV_REF.sub(lambda m: self.env[m.group(1)], text)

    def shown(self, node: yaml.Node, text: str, *, quote: bool = True) -> str:
        """How a scalar may appear in a message: environment variables often hold
        secrets, so a value that came from `${VAR}` is named by its reference only."""
        raw = env_text(node)
        if raw is not None:
            return env_shown(raw)
        return f"'{_clip(text)}'" if quote else _clip(text)

    def integer(self, node: yaml.Node, path: str, lo: int, hi: int) -> int | None:
        value = self._number(node, path, integral=True)
        if value is None:
            return None
        if not lo <= value <= hi:
            got = self.shown(node, str(int(value)), quote=False)
            self.fail(node, path, f"must be between {lo} and {hi}, got {got}")
            return None
        return int(value)

    def number(self, node: yaml.Node, path: str, lo: float, hi: float) -> float | None:
        value = self._number(node, path, integral=False)
        if value is None:
            return None
        if not lo <= value <= hi:
            got = self.shown(node, f"{value:g}", quote=False)
            self.fail(node, path, f"must be between {lo:g} and {hi:g}, got {got}")
            return None
        return float(value)

    def _number(self, node: yaml.Node, path: str, *, integral: bool) -> float | None:
        want = "a whole number" if integral else "a number"
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, path, f"expected {want}, got {_kind(node)}")
            return None
        text = self._expand(node, path, str(node.value))
        if text is None:
            return None
        try:
            value = float(int(text, 10)) if integral else float(text)
        except ValueError:
            self.fail(node, path, f"expected {want}, got {self.shown(node, text)}")
            return None
        if value != value or value in (float("inf"), float("-inf")):
            self.fail(node, path, f"expected a finite number, got {self.shown(node, text)}")
            return None
        return value

    def boolean(self, node: yaml.Node, path: str) -> bool | None:
        if isinstance(node, yaml.ScalarNode) and node.tag == _BOOL_TAG:
            return str(node.value).lower() in ("true", "yes", "on")
        self.fail(node, path, f"expected true or false, got {_kind(node)}")
        return None

    def string_list(self, node: yaml.Node, path: str) -> list[str] | None:
        items = self.sequence(node, path)
        if items is None:
            return None
        out: list[str] = []
        for i, item in enumerate(items):
            value = self.string(item, f"{path}[{i}]")
            if value is not None:
                out.append(value)
        return out

    def string_map(self, node: yaml.Node, path: str) -> dict[str, str] | None:
        pairs = self.mapping(node, path)
        if pairs is None:
            return None
        out: dict[str, str] = {}
        for key, (_, value_node) in pairs.items():
            if isinstance(value_node, yaml.ScalarNode) and value_node.tag != _NULL_TAG:
                out[key] = str(value_node.value)
            else:
                self.fail(
                    value_node, f"{path}.{key}", f"expected a plain value, got {_kind(value_node)}"
                )
        return out

    def path(self, node: yaml.Node, field_path: str, base: Path) -> Path | None:
        text = self.string(node, field_path)
        if text is None:
            return None
        p = Path(text).expanduser()
        return p if p.is_absolute() else (base / p)


def suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    """A ' (did you mean ...?)' hint, or a list of valid names when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    if choices:
        return f"; expected one of: {', '.join(sorted(choices))}"
    return ""


def env_text(node: yaml.Node) -> str | None:
    """The raw text of a scalar that references `${VAR}`s, else None."""
    raw = node.value if isinstance(node, yaml.ScalarNode) else None
    return raw if isinstance(raw, str) and ENV_REF.search(raw) else None


def env_shown(raw: str) -> str:
    """A message-safe stand-in for the value of `raw`, which holds `${VAR}` references."""
    if ENV_REF.fullmatch(raw):
        return f"the value of {raw}"
    return f"the expansion of '{_clip(raw)}'"


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == _NULL_TAG:
        return "nothing (null)"
    if node.tag in (_INT_TAG, _FLOAT_TAG):
        return f"the number {_clip(str(node.value))}"
    if node.tag == _BOOL_TAG:
        return f"the boolean {node.value}"
    return f"'{_clip(str(node.value))}'"


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
