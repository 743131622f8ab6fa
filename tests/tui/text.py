"""Read what a screen shows as plain text, whatever each widget renders (Text, a rich Table)."""

from __future__ import annotations

from rich.console import Console
from textual.screen import Screen
from textual.widgets import Static


def static_text(widget: Static) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(widget.content)
    return console.export_text()


def screen_text(screen: Screen[object]) -> str:
    return "\n".join(static_text(s) for s in screen.query(Static))
