"""Every custom message of the app, as small dataclasses. Messages go up, reactives go down."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from cluster.check import HostChecked, HostCheckFailed
from cluster.events import Event
from cluster.fleet import FleetSnapshot
from cluster.logs import LogLine


@dataclass
class HostResult(Message):
    """A host answered (or failed) its probe."""

    result: HostChecked | HostCheckFailed

    def can_replace(self, message: Message) -> bool:
        # A newer result for the same host makes an older, unprocessed one pointless.
        return isinstance(message, HostResult) and message.result.host == self.result.host


@dataclass
class CheckDone(Message):
    """A round of probes finished."""

    healthy: int
    failed: int
    duration_s: float


@dataclass
class OperationFailed(Message):
    """An operation could not run at all (the inventory became invalid, a host vanished...)."""

    what: str
    error: str


@dataclass
class FleetUpdated(Message):
    """A new interval of fleet telemetry and Serve state arrived."""

    snapshot: FleetSnapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, FleetUpdated)


@dataclass
class OperationEvent(Message):
    """One progress event of a running operation; `kind` is traffic, swap, plan, apply..."""

    kind: str
    title: str
    event: Event


@dataclass
class OperationDone(Message):
    """A running operation ended; `error` says why it failed, empty when it ran to its end."""

    kind: str
    title: str
    error: str = ""


@dataclass
class LogLines(Message):
    """Lines followed from a node's Serve logs."""

    lines: list[LogLine]


@dataclass
class Jump(Message):
    """Go to a screen, from the `:` line or the command palette."""

    where: str
    argument: str = ""


@dataclass
class FilterChanged(Message):
    """The `/` filter of the screen in view changed."""

    text: str
