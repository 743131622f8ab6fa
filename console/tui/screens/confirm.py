"""A yes/no question before anything destructive; it names exactly what will change."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class ConfirmScreen(ModalScreen[bool]):
    """`y` answers yes; `n` or `esc` no. Nothing is pre-selected: Enter does nothing."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, title: str, lines: list[str], yes: str = "yes") -> None:
        super().__init__(classes="confirm")
        self.question = title
        self.lines = lines
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(Text(self.question, "bold"), id="confirm-title")
            for line in self.lines:
                yield Static(Text(line), classes="confirm-line")
            yield Static(
                Text.assemble(
                    ("y", "bold"), f": {self.yes}    ", ("n", "bold"), "/esc: no, change nothing"
                ),
                id="confirm-keys",
            )

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
