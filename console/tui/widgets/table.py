"""A DataTable keyed by row, updated in place, filtered by `/`, with columns that fit.

Every table of the console is one: rows are given as a whole each time (`set_rows`), and only
the cells that changed are redrawn, so a live table neither flickers nor loses its cursor.
Columns carry a priority: when the terminal is narrow the least important ones are left out
(the screen shows them elsewhere, e.g. in a detail pane), never cut in the middle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.events import Resize
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowDoesNotExist

Cells = Mapping[str, Text]
SCROLLBAR = 2


@dataclass(frozen=True)
class Column:
    """One column: `priority` 0 is always shown; higher numbers go first when space is short."""

    key: str
    label: str
    width: int
    priority: int = 0


def matches(cells: Cells, text: str) -> bool:
    """k9s-style filter: a case-insensitive substring of any cell; `!x` keeps rows without x."""
    if not text:
        return True
    inverse = text.startswith("!")
    needle = text[1:].lower() if inverse else text.lower()
    found = any(needle in cell.plain.lower() for cell in cells.values())
    return found != inverse


def fit(columns: tuple[Column, ...], width: int, padding: int = 1) -> tuple[Column, ...]:
    """The columns that fit in `width`, most important first, shown in their declared order."""
    room = max(0, width - SCROLLBAR)
    chosen: set[str] = set()
    for column in sorted(columns, key=lambda c: c.priority):
        need = column.width + 2 * padding
        if column.priority == 0 or need <= room:
            chosen.add(column.key)
            room -= need
    return tuple(c for c in columns if c.key in chosen)


class KeyedTable(DataTable[Text]):
    """Rows keyed by a string; see the module docstring."""

    COLUMNS: ClassVar[tuple[Column, ...]] = ()

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self._by_key: dict[str, Cells] = {}
        self._visible: list[str] = []
        self._shown: tuple[Column, ...] = ()
        self.filter_text = ""

    @property
    def shown_columns(self) -> tuple[str, ...]:
        return tuple(c.key for c in self._shown)

    @property
    def hidden_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.COLUMNS if c not in self._shown)

    @property
    def keys(self) -> list[str]:
        """Every row's key, shown or filtered out."""
        return list(self._by_key)

    @property
    def visible_keys(self) -> list[str]:
        """The keys of the rows shown, in order (the filter applied)."""
        return list(self._visible)

    @property
    def current_key(self) -> str | None:
        """The key of the row under the cursor, if any."""
        if not self._visible or self.cursor_row < 0 or self.cursor_row >= len(self._visible):
            return None
        return self._visible[self.cursor_row]

    def cells(self, key: str) -> Cells | None:
        return self._by_key.get(key)

    def on_mount(self) -> None:
        self._relayout(self.size.width or (self.app.size.width if self.app else 80))

    def on_resize(self, event: Resize) -> None:
        self._relayout(event.size.width)

    def set_rows(self, rows: Mapping[str, Cells]) -> None:
        """Show exactly these rows in this order; unchanged cells are not touched."""
        self._by_key = dict(rows)
        visible = [k for k, cells in self._by_key.items() if matches(cells, self.filter_text)]
        if visible != self._visible:
            self._rebuild(visible)
            return
        for key in visible:
            cells = self._by_key[key]
            for column in self._shown:
                value = cells.get(column.key, Text(""))
                try:
                    if self.get_cell(key, column.key) != value:
                        self.update_cell(key, column.key, value)
                except (CellDoesNotExist, RowDoesNotExist):
                    self._rebuild(visible)
                    return

    def put(self, rows: Mapping[str, Cells]) -> None:
        """Add these rows, or replace them where their key is shown already (in place)."""
        self.set_rows({**self._by_key, **rows})

    def reset(self) -> None:
        self.set_rows({})

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self.set_rows(self._by_key)

    def _relayout(self, width: int) -> None:
        shown = fit(self.COLUMNS, width, self.cell_padding)
        if shown == self._shown:
            return
        self._shown = shown
        keep = self.current_key
        self.clear(columns=True)
        for column in shown:
            self.add_column(column.label, width=column.width, key=column.key)
        self._visible = []
        self._rebuild([k for k, c in self._by_key.items() if matches(c, self.filter_text)], keep)

    def _rebuild(self, visible: list[str], keep: str | None = None) -> None:
        keep = keep if keep is not None else self.current_key
        self.clear()
        for key in visible:
            cells = self._by_key[key]
            self.add_row(*(cells.get(c.key, Text("")) for c in self._shown), key=key)
        self._visible = visible
        if keep in visible:
            self.move_cursor(row=visible.index(keep), animate=False, scroll=False)
