"""The Textual application: `mlops-tui` (or `mlops-tui tui`) on a terminal."""

from __future__ import annotations

from textual.app import App

from cluster.inventory import Inventory
from console.tui.screens.hosts import HostsScreen


class MlopsApp(App[None]):
    """Starts on the hosts screen; more screens join as the operations land."""

    CSS_PATH = "app.tcss"
    TITLE = "mlops-tui"

    def __init__(self, inventory: Inventory) -> None:
        super().__init__()
        self.inventory = inventory
        self.sub_title = str(inventory.path)

    def on_mount(self) -> None:
        self.push_screen(HostsScreen(self.inventory))
