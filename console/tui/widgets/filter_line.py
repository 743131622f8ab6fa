"""The `/` line: filters the table in view as you type (`!text` keeps rows without it)."""

from __future__ import annotations

from textual.widgets import Input


class FilterLine(Input):
    """Hidden until `/`; Enter keeps the filter and returns to the table, Esc clears it."""

    def __init__(self) -> None:
        super().__init__(
            placeholder="/filter   (!text: rows without it; Esc clears)", id="filter-line"
        )

    def open(self) -> None:
        self.display = True
        self.focus()

    def close(self) -> None:
        self.display = False
