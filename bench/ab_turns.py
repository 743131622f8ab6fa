"""Two ways of serving the same requests compared on a machine whose speed wanders.

On this kind of 2-CPU machine the same run repeated seconds later moved by up to 15%
(throughput and CPU per request together: the machine, not the server). A cost of a few
percent is only visible when A and B take turns quickly and often: each cell runs `pairs`
turns of A and B, in A B B A order so a steady drift weighs on both alike, and compares
B's requests with A's over the same total time. The spread of the single turns says how
much one short comparison could be trusted on its own; the ratio over all turns is the one
to read.

Used by bench/tls.py (HTTP against HTTPS) and bench/monitor_ab.py (monitor off against on).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.wrk import WrkResult

# One timed run of a side: wrk's result and the CPU milliseconds per request it cost there.
Run = Callable[[], tuple[WrkResult, float]]


@dataclass
class Cell:
    """One cell's turns: A's runs, B's runs and the CPU per request of each."""

    a: list[WrkResult] = field(default_factory=list)
    b: list[WrkResult] = field(default_factory=list)
    a_ms: list[float] = field(default_factory=list)
    b_ms: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """B's requests over A's, all turns together (each side ran the same total time)."""
        a = sum(r.requests for r in self.a)
        return sum(r.requests for r in self.b) / a if a else 0.0

    @property
    def turns(self) -> list[float]:
        """B over A for each pair of turns: the noise a single short comparison carries."""
        return [
            b.requests / a.requests if a.requests else 0.0
            for a, b in zip(self.a, self.b, strict=True)
        ]

    def median(self, side: str, field: str) -> float:
        """The median of one of WrkResult's fields over a side's turns ("a" or "b")."""
        return statistics.median(getattr(r, field) for r in (self.a if side == "a" else self.b))

    @property
    def errors(self) -> int:
        return sum(r.errors for r in (*self.a, *self.b))

    def columns(self) -> str:
        """The table's columns for this cell: req/s of A and B, the ratio, single turns, p99
        of A and B, CPU ms per request of A and B (medians but the ratio)."""
        turns = self.turns
        return (
            f"| {self.median('a', 'requests_per_s'):.1f} | {self.median('b', 'requests_per_s'):.1f} "
            f"| {self.ratio:.2f}x | {min(turns):.2f}-{max(turns):.2f} "
            f"| {self.median('a', 'p99_ms'):.1f} | {self.median('b', 'p99_ms'):.1f} "
            f"| {statistics.median(self.a_ms):.2f} | {statistics.median(self.b_ms):.2f} |"
        )

    def progress(self) -> str:
        """One line for the console as a cell finishes."""
        return (
            f"{self.median('a', 'requests_per_s'):7.1f} against {self.median('b', 'requests_per_s'):7.1f} "
            f"req/s, ratio {self.ratio:.3f}, turns " + " ".join(f"{t:.2f}" for t in self.turns)
        )

    def extra_ms(self) -> float:
        """B's CPU per request over A's (medians)."""
        return statistics.median(self.b_ms) - statistics.median(self.a_ms)


def take_turns(cell: Cell, a: Run, b: Run, pairs: int) -> None:
    """`pairs` turns of A and B, ordered A B, B A, A B, ... into `cell`."""
    sides = ((a, cell.a, cell.a_ms), (b, cell.b, cell.b_ms))
    for i in range(pairs):
        for run, results, costs in sides if i % 2 == 0 else sides[::-1]:
            result, ms = run()
            results.append(result)
            costs.append(ms)


def spread(cells: dict[tuple[int, int, int], Cell]) -> tuple[float, float]:
    """The lowest and highest single-turn ratio over all cells."""
    turns = [t for c in cells.values() for t in c.turns]
    return min(turns), max(turns)
