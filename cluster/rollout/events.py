"""What a swap and the one-step traffic changes report: options in, events out."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cluster.errors import UsageError
from cluster.events import Event
from cluster.gates import Gate
from cluster.rollout.gates_eval import GateResult


class Strategy(StrEnum):
    """bluegreen: the route moves at once; canary: traffic shifts in steps, baking after each."""

    BLUEGREEN = "bluegreen"
    CANARY = "canary"


class SwapOutcome(StrEnum):
    """How a swap ended; the CLI's exit code and the console's colour follow from it."""

    PROMOTED = "promoted"
    PARTIAL = "partial"  # edge hosts that failed a gate went back, within max_failures
    ROLLED_BACK = "rolled_back"  # a gate failed: every host is on the old version
    GATE_FAILED = "gate_failed"  # a gate failed and --no-auto-rollback left it as it was
    FAILED = "failed"  # an error: the old version is live (or a rollback failed: see detail)
    RETIRE_FAILED = "retire_failed"  # promoted, but the old replicas are still there
    # Only in the history: refused before anything changed; cancelled (Ctrl-C, a lost console).
    REFUSED = "refused"
    INTERRUPTED = "interrupted"

    @property
    def gate_failed(self) -> bool:
        return self in (SwapOutcome.PARTIAL, SwapOutcome.ROLLED_BACK, SwapOutcome.GATE_FAILED)


def parse_steps(text: str) -> tuple[int, ...]:
    """Canary shares as the operator writes them ("10,50,100"); UsageError says how to fix."""
    try:
        steps = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise UsageError(f"steps '{text}': write percentages like 10,50,100") from None
    if not steps or any(not 0 < s <= 100 for s in steps) or list(steps) != sorted(steps):
        raise UsageError(f"steps '{text}': increasing percentages between 1 and 100")
    return steps


@dataclass(frozen=True)
class SwapOptions:
    """How to swap: strategy, steps, bake and shadow durations, gates, retirement delay."""

    to_version: str
    strategy: Strategy = Strategy.BLUEGREEN
    steps: tuple[int, ...] = (10, 50, 100)
    bake_s: float = 30.0
    shadow_s: float = 0.0
    gates: tuple[Gate, ...] = ()
    # No gate at all, said explicitly (--no-gates); without it and without gates, a default
    # holdout gate judges the swap.
    no_gates: bool = False
    # Take over another operator's lease on the app (one known to be gone).
    force: bool = False
    auto_rollback: bool = True
    # The old replicas stay (idle) this long after the whole fleet is on the new version, so a
    # rollback until then is one route flip; after it they are retired.
    retire_after_s: float = 30.0
    interval_s: float = 1.0


@dataclass(frozen=True)
class SwapStep(Event):
    """A phase happened: deploy, ready, baseline, shadow, shift, promote, retire, rollback..."""

    app: str
    cluster: str
    phase: str
    detail: str
    data: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class GatesChecked(Event):
    """Every gate's value and verdict at the end of a phase."""

    app: str
    cluster: str
    phase: str
    results: tuple[GateResult, ...]
    passed: bool


@dataclass(frozen=True)
class BakeProgress(Event):
    """Every interval of a bake or shadow phase: how far it is, and each gate's value so far
    (a gate with no figure yet is pending, not failed; the verdict is GatesChecked's)."""

    app: str
    cluster: str
    phase: str
    elapsed_s: float
    total_s: float
    results: tuple[GateResult, ...]


@dataclass(frozen=True)
class SwapFinished(Event):
    """promoted; partial (an edge host failed its gates and went back, within max_failures);
    rolled_back (a gate failed: every host is on the old version); gate_failed (left as is,
    --no-auto-rollback); failed (an error: the old version is live)."""

    app: str
    outcome: SwapOutcome
    from_version: str | None
    to_version: str
    detail: str
    timings: dict[str, float] = field(default_factory=dict)
    rolled_back: tuple[str, ...] = ()  # clusters put back on the old version


class GateFailed(Exception):
    """A gate failed on one cluster; carries the phase and the results."""

    def __init__(self, phase: str, results: list[GateResult]) -> None:
        super().__init__(phase)
        self.phase = phase
        self.results = results
