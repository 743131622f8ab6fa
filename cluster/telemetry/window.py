"""Per-node ring buffers of scrapes, and deltas over a sliding window."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cluster.telemetry.prom import Sample

Key = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class Scrape:
    """One node's samples at one moment, indexed by (name, sorted labels)."""

    at: float
    values: dict[Key, float]
    _by_name: dict[str, dict[Key, float]] = field(default_factory=dict, compare=False, repr=False)

    def family(self, name: str) -> dict[Key, float]:
        """The samples named `name` (grouped once per scrape: the aggregation reads a few
        names out of hundreds of samples, for every node, every second)."""
        if not self._by_name and self.values:
            for key, value in self.values.items():
                self._by_name.setdefault(key[0], {})[key] = value
        return self._by_name.get(name, {})


def index(samples: Iterable[Sample]) -> dict[Key, float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in samples}


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

    def span(self, window_s: float, now: float) -> tuple[Scrape, Scrape] | None:
        """(oldest within the window, newest), or None without two scrapes in the window: after
        an outage longer than the window, the first new scrape must not count the outage."""
        if len(self.scrapes) < 2:
            return None
        newest = self.scrapes[-1]
        oldest = next(s for s in self.scrapes if newest.at - s.at <= window_s + 1e-6)
        return None if oldest is newest else (oldest, newest)


def counter_deltas(
    old: Scrape, new: Scrape, name: str, keep: Callable[[dict[str, str]], bool]
) -> dict[Key, float]:
    """Increase of every matching counter between two scrapes (a reset counts from zero)."""
    out: dict[Key, float] = {}
    for key, value in new.family(name).items():
        if not keep(dict(key[1])):
            continue
        before = old.values.get(key, 0.0)
        out[key] = value - before if value >= before else value
    return out


def gauges(scrape: Scrape, name: str, keep: Callable[[dict[str, str]], bool]) -> dict[Key, float]:
    return {k: v for k, v in scrape.family(name).items() if keep(dict(k[1]))}
