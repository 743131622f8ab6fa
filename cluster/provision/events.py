"""Events of plan, apply and destroy; the CLI prints them, the TUI will show them."""

from __future__ import annotations

from dataclasses import dataclass

from cluster.events import Event
from cluster.provision.plan import Action


@dataclass(frozen=True)
class PlanReady(Event):
    """Everything that would change, per host, and what blocks it (preflight)."""

    actions: tuple[Action, ...]
    errors: tuple[str, ...]
    unreachable: tuple[str, ...]


@dataclass(frozen=True)
class StepStarted(Event):
    """A host (or cluster) step begins."""

    host: str
    step: str
    detail: str


@dataclass(frozen=True)
class StepDone(Event):
    """A step finished and its change is in place."""

    host: str
    step: str
    detail: str
    duration_s: float


@dataclass(frozen=True)
class StepFailed(Event):
    """A step failed; the host keeps its previous state for this step."""

    host: str
    step: str
    error: str
    duration_s: float


@dataclass(frozen=True)
class HostSkipped(Event):
    """A host was not touched (its batch never ran, or its cluster's head failed)."""

    host: str
    reason: str


@dataclass(frozen=True)
class RunFinished(Event):
    """The end of apply or destroy."""

    changed: int
    failed_hosts: tuple[str, ...]
    skipped_hosts: tuple[str, ...]
    duration_s: float
