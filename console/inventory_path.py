"""Which inventory file a command uses: -i, else $MLOPS_INVENTORY, else ./inventory.yaml."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console
from rich.text import Text

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


def open_inventory(
    option: str | None, targets: list[str] | None = None, *, err: Console | None = None
) -> Inventory:
    """Load the inventory and check that every named target exists in it.

    With `err`, the inventory's warnings (host key checking off, ...) are printed there:
    here, once, so every command that connects warns on every run.
    """
    inventory = load_inventory(resolve_inventory_path(option))
    if err is not None:
        for warning in inventory.warnings:
            # Literal text: a warning quotes inventory values, which are not rich markup.
            err.print(Text.assemble(("warning:", "yellow"), " ", warning))
    for name in targets or []:
        if name not in inventory.targets:
            known = ", ".join(inventory.targets) or "none defined"
            raise UsageError(f"no target named '{name}' in {inventory.path} (targets: {known})")
    return inventory
