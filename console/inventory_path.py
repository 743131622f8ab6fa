"""Which inventory file a command uses: -i, else $MLOPS_INVENTORY, else ./inventory.yaml."""

from __future__ import annotations

import os
from pathlib import Path

from cluster.errors import UsageError
from cluster.inventory import Inventory, load_inventory


def resolve_inventory_path(option: str | None) -> Path:
    if option:
        return Path(option)
    env = os.environ.get("MLOPS_INVENTORY")
    if env:
        return Path(env)
    default = Path("inventory.yaml")
    if not default.exists():
        raise UsageError(
            "no inventory: pass -i PATH, set $MLOPS_INVENTORY, or create ./inventory.yaml "
            "(copy inventory.example.yaml to start)"
        )
    return default


def open_inventory(option: str | None, targets: list[str] | None = None) -> Inventory:
    """Load the inventory and check that every named target exists in it."""
    inventory = load_inventory(resolve_inventory_path(option))
    for name in targets or []:
        if name not in inventory.targets:
            known = ", ".join(inventory.targets) or "none defined"
            raise UsageError(f"no target named '{name}' in {inventory.path} (targets: {known})")
    return inventory
