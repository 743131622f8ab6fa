"""`?`: every key of the screen below, and every place `:` can go."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from console.tui.commands import PLACES


class HelpScreen(ModalScreen[None]):
    """Lists the active bindings of `below`; any of esc, q or ? closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, below: Screen[None]) -> None:
        super().__init__(id="help")
        self.below = below

    def compose(self) -> ComposeResult:
        keys = Table.grid(padding=(0, 2))
        keys.add_column(style="bold")
        keys.add_column()
        seen: set[str] = set()
        keys.add_row(Text("↑ ↓ pgup pgdn"), Text("move; enter opens or selects"))
        for active in self.below.active_bindings.values():
            binding = active.binding
            ours = active.node is self.below or active.node is self.app
            if not ours or binding.system or not binding.description or binding.description in seen:
                continue
            seen.add(binding.description)
            label = binding.key_display or self.app.get_key_display(binding)
            note = "" if active.enabled else "  (not now: read-only or nothing selected)"
            keys.add_row(Text(label), Text(binding.description + note))
        keys.add_row(Text("ctrl+p"), Text("palette: find apps, hosts and actions by name"))
        places = Table.grid(padding=(0, 2))
        places.add_column(style="bold")
        places.add_column()
        for place in PLACES:
            arg = f" {place.argument.upper().rstrip('?')}" if place.argument else ""
            arg = f" [{arg.strip()}]" if place.argument.endswith("?") else arg
            places.add_row(Text(f":{place.name}{arg}"), Text(place.help))
        with VerticalScroll(id="help-body"):
            yield Static(Text(f"Keys on this screen ({self.below.title or 'console'})", "bold"))
            yield Static(keys)
            yield Static(Text("\n:  jump anywhere (Tab completes)", "bold"))
            yield Static(places)
            yield Static(Text("\nesc, q or ? closes this", "dim"))

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
