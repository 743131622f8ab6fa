"""Followed log lines, kept (bounded) so a `/` filter can show older ones again."""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual.widgets import RichLog

from cluster.logs import LogLine

KEEP = 5000


def line_text(line: LogLine) -> Text:
    if not line.file:
        return Text(f"── {line.text}", "dim italic")
    level = "red" if " ERROR " in line.text or "Traceback" in line.text else ""
    level = level or ("yellow" if " WARNING " in line.text else "")
    text = Text(f"{_short(line.file)} ", "cyan")
    text.append(line.text, level)
    return text


def _short(name: str) -> str:
    """replica_cancer--1_Model_abc123.log -> replica…abc123"""
    stem = name[:-4] if name.endswith(".log") else name
    return stem if len(stem) <= 22 else f"{stem[:8]}…{stem[-12:]}"


class LogView(RichLog):
    """At most KEEP lines; `set_filter` redraws the kept lines that match."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=KEEP, wrap=False, markup=False, highlight=False)
        self.kept: deque[LogLine] = deque(maxlen=KEEP)
        self.filter_text = ""

    def _matches(self, line: LogLine) -> bool:
        if not self.filter_text:
            return True
        inverse = self.filter_text.startswith("!")
        needle = (self.filter_text[1:] if inverse else self.filter_text).lower()
        found = needle in line.text.lower() or needle in line.file.lower()
        return found != inverse

    def add(self, lines: list[LogLine]) -> None:
        self.kept.extend(lines)
        for line in lines:
            if self._matches(line):
                self.write(line_text(line))

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self.clear()
        for line in self.kept:
            if self._matches(line):
                self.write(line_text(line))
