"""Per-node ring buffers of scrapes, and the span of them a sliding window covers."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Scrape:
    """One node's samples at one moment, keyed by series text (prom.parse_index)."""

    at: float
    values: dict[str, float]


class NodeWindow:
    """The last scrapes of one node, enough to cover the window."""

    def __init__(self, keep: int) -> None:
        self.scrapes: deque[Scrape] = deque(maxlen=max(2, keep))
        self.last_ok: float | None = None
        self.failures = 0

    def add(self, scrape: Scrape) -> None:
        self.scrapes.append(scrape)
        self.last_ok = scrape.at
        self.failures = 0

    def clear(self) -> None:
        """Forget the scrapes (a new digest's counters cannot be compared with the old's)."""
        self.scrapes.clear()

    def span(self, window_s: float, now: float) -> tuple[Scrape, Scrape] | None:
        """(oldest within the window, newest), or None without two scrapes in the window: after
        an outage longer than the window, the first new scrape must not count the outage."""
        if len(self.scrapes) < 2:
            return None
        newest = self.scrapes[-1]
        oldest = next(s for s in self.scrapes if newest.at - s.at <= window_s + 1e-6)
        return None if oldest is newest else (oldest, newest)
