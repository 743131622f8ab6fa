"""Text that changes every interval: repainted in place, laid out again only when its number of
lines changes (a layout pass of the whole screen each second was most of a refresh's cost)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class LiveText(Static):
    """`show_text` replaces the content; lines never wrap (they end with … when too long)."""

    DEFAULT_CSS = """
    LiveText {
        height: auto;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes, markup=False)
        self._lines = -1

    def show_text(self, text: Text) -> None:
        text.no_wrap = True
        text.overflow = "ellipsis"
        lines = text.plain.count("\n") + 1
        self.update(text, layout=lines != self._lines)
        self._lines = lines
