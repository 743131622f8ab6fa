"""The resolved hosts of an inventory, as a table and as JSON (`inventory show`)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from cluster.inventory import Host, Inventory


def host_document(host: Host, target: str | None) -> dict[str, object]:
    """Every connection setting as resolved, so it can be set beside `ansible-inventory --list`."""
    return {
        "name": host.name,
        "address": host.address,
        "port": host.port,
        "user": host.user,
        "key_file": str(host.key_file) if host.key_file is not None else None,
        "via": host.via,
        "python": host.python,
        "connection": host.connection,
        "groups": list(host.groups),
        "target": target,
        "defined_at": str(host.loc) if host.loc is not None else None,
        "set_in": dict(sorted(host.origins.items())),
    }


def inventory_document(inventory: Inventory, hosts: list[Host]) -> dict[str, object]:
    owner = _owners(inventory)
    return {
        "inventory": str(inventory.path),
        "hosts": [host_document(h, owner.get(h.name)) for h in hosts],
        "warnings": list(inventory.warnings),
    }


def inventory_table(inventory: Inventory, hosts: list[Host]) -> Table:
    owner = _owners(inventory)
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("host", "address", "port", "user", "key", "via", "python", "groups", "target"):
        table.add_column(column, overflow="fold")
    for h in hosts:
        table.add_row(
            Text(h.name),
            Text(h.address if h.connection == "ssh" else f"{h.address} (local)"),
            Text(str(h.port) if h.connection == "ssh" else "-"),
            Text(h.user),
            Text(str(h.key_file) if h.key_file is not None else "-"),
            Text(h.via or "-"),
            Text(h.python),
            Text(",".join(h.groups) or "-"),
            Text(owner.get(h.name) or "-"),
        )
    return table


def _owners(inventory: Inventory) -> dict[str, str]:
    return {host: t.name for t in inventory.targets.values() for host in t.hosts}
