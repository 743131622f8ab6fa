"""The console on replayed fleet frames: an inventory, the example models, a replay source."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from cluster.inventory import Inventory
from cluster.models.store import ModelStore
from console.tui.app import MlopsApp
from tests.support.fleet_frames import load, replay, write_inventory


@pytest.fixture
def replay_inventory(tmp_path: Path, example_store: ModelStore) -> Inventory:
    """grid (node1, node2) runs `cancer` with a 10% canary; shops (3 edge hosts) runs `shelf`."""
    store = tmp_path / "models"
    shutil.copytree(example_store.root, store)
    return load(write_inventory(tmp_path, store=store))


@pytest.fixture
def console(replay_inventory: Inventory) -> Callable[..., MlopsApp]:
    """A console fed recorded frames (no SSH, no Ray); keyword arguments go to MlopsApp."""

    def make(ticks: int = 5, **kw: object) -> MlopsApp:
        return MlopsApp(replay_inventory, source=replay(replay_inventory, ticks=ticks), **kw)  # type: ignore[arg-type]

    return make
