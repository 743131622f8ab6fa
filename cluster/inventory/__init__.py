"""The YAML host inventory: schema, loading with located errors, Ansible import."""

from cluster.inventory.loader import load_inventory
from cluster.inventory.model import (
    App,
    Host,
    Inventory,
    RayPorts,
    Rollout,
    Secret,
    Settings,
    Target,
)

__all__ = [
    "App",
    "Host",
    "Inventory",
    "RayPorts",
    "Rollout",
    "Secret",
    "Settings",
    "Target",
    "load_inventory",
]
