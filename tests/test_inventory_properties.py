"""Property tests: whatever YAML arrives, the loader returns a model or a located InventoryError."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster.errors import InventoryError
from cluster.inventory import Inventory, load_inventory

EXAMPLE = yaml.safe_load(
    (Path(__file__).resolve().parent.parent / "inventory.example.yaml").read_text()
)
SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        ["${HOME}", "${NOPE_NOT_SET}", "single", "cluster", "edge", "local", "a", "/x", "p95_ms<=5"]
    ),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.text(max_size=12), st.sampled_from(sorted(EXAMPLE))), children, max_size=4
        ),
    ),
    max_leaves=25,
)


def load_text(tmp_path: Path, text: str) -> Inventory | None:
    path = tmp_path / "inv.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        return load_inventory(path, env={"HOME": "/root"})
    except InventoryError as exc:
        for problem in exc.problems:
            assert problem.file == str(path)
            assert problem.line >= 1 and problem.column >= 1
            assert problem.message
        return None


@SETTINGS
@given(st.text(max_size=300))
def test_arbitrary_text(tmp_path: Path, text: str) -> None:
    load_text(tmp_path, text)


@SETTINGS
@given(values)
def test_arbitrary_yaml_structures(tmp_path: Path, doc: Any) -> None:
    load_text(tmp_path, yaml.safe_dump(doc))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths(v, (*prefix, i)))
    return out


@st.composite
def mutated_example(draw: st.DrawFn) -> Any:
    doc = copy.deepcopy(EXAMPLE)
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(doc) if p]
        path = draw(st.sampled_from(paths))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "rename", "add"]))
        last = path[-1]
        if action == "replace":
            parent[last] = draw(values)
        elif action == "delete":
            del parent[last]
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = parent.pop(last)
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(values)
    return doc


@SETTINGS
@given(mutated_example())
def test_mutated_valid_inventories(tmp_path: Path, doc: Any) -> None:
    inv = load_text(tmp_path, yaml.safe_dump(doc))
    if inv is not None:  # whatever loaded is internally consistent
        for target in inv.targets.values():
            assert all(h in inv.hosts for h in target.hosts)
        for app in inv.apps.values():
            assert app.target in inv.targets


def test_the_unmutated_example_loads(tmp_path: Path) -> None:
    assert load_text(tmp_path, yaml.safe_dump(EXAMPLE)) is not None
