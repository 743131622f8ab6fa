"""Ray clusters as the inventory implies them: a single host, a head with workers, or one
independent one-node cluster per edge host."""

from __future__ import annotations

from dataclasses import dataclass

from cluster.inventory import App, Host, Inventory, Target


@dataclass(frozen=True)
class RayCluster:
    """One Ray cluster: `id` names its token and monitor; edge hosts get `TARGET.HOST`."""

    id: str
    target: Target
    head: Host
    workers: tuple[Host, ...]

    @property
    def hosts(self) -> tuple[Host, ...]:
        return (self.head, *self.workers)


def clusters_of(inventory: Inventory, target: Target) -> list[RayCluster]:
    if target.topology == "edge":
        return [
            RayCluster(f"{target.name}.{h}", target, inventory.hosts[h], ())
            for h in target.edge_hosts
        ]
    assert target.head is not None
    workers = tuple(inventory.hosts[w] for w in target.workers)
    return [RayCluster(target.name, target, inventory.hosts[target.head], workers)]


def apps_on(inventory: Inventory, target: Target) -> list[App]:
    return [a for a in inventory.apps.values() if a.target == target.name]


def selected_targets(inventory: Inventory, names: list[str] | None) -> list[Target]:
    """The named targets, or every target in inventory order."""
    if names:
        return [inventory.targets[n] for n in names]
    return list(inventory.targets.values())
