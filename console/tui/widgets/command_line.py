"""The `:` line (k9s' command mode): type a place, Tab or → completes, Enter goes there."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Input

from cluster.inventory import Inventory
from console.tui.commands import CommandSuggester


class CommandLine(Input):
    """Hidden until `:`; Enter submits, Esc hides it again."""

    BINDINGS = [Binding("tab", "cursor_right", "Complete", show=False)]

    def __init__(self, inventory: Inventory) -> None:
        super().__init__(
            placeholder=":apps  :app NAME  :rollout APP  :hosts  :models  :history  :logs NODE  :plan",
            suggester=CommandSuggester(inventory),
            id="command-line",
        )

    def open(self) -> None:
        self.value = ""
        self.display = True
        self.focus()

    def close(self) -> None:
        self.display = False
