"""An app's `max_rows` (the /predict row limit) comes from the inventory, default 1024."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.errors import InventoryError
from cluster.inventory import load_inventory

BASE = """\
hosts:
  a: 127.0.0.11
targets:
  one:
    topology: single
    host: a
apps:
  m:
    target: one
    model: cancer:2
"""


def test_max_rows_defaults_to_1024_and_is_read_per_app(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(BASE)
    assert load_inventory(path, env={}).apps["m"].max_rows == 1024
    path.write_text(BASE + "    max_rows: 64\n")
    assert load_inventory(path, env={}).apps["m"].max_rows == 64


def test_max_rows_out_of_range_is_named_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(BASE + "    max_rows: 0\n")
    with pytest.raises(InventoryError) as info:
        load_inventory(path, env={})
    assert [str(p) for p in info.value.problems] == [
        f"{path}:11:15: apps.m.max_rows: must be between 1 and 100000, got 0"
    ]
