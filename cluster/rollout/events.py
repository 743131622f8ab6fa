"""What a swap and the one-step traffic changes report: options in, events out."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from cluster.events import Event
from cluster.gates import Gate
from cluster.rollout.gates_eval import GateResult


@dataclass(frozen=True)
class SwapOptions:
    """How to swap: strategy, steps, bake and shadow durations, gates, retirement delay."""

    to_version: str
    strategy: str = "bluegreen"
    steps: tuple[int, ...] = (10, 50, 100)
    bake_s: float = 30.0
    shadow_s: float = 0.0
    gates: tuple[Gate, ...] = ()
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
    results: tuple[dict[str, Any], ...]
    passed: bool


@dataclass(frozen=True)
class SwapFinished(Event):
    """promoted; partial (an edge host failed its gates and went back, within max_failures);
    rolled_back (a gate failed: every host is on the old version); gate_failed (left as is,
    --no-auto-rollback); failed (an error: the old version is live)."""

    app: str
    outcome: str
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
