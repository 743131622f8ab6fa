"""Every custom message of the app, as small dataclasses. Messages go up, reactives go down."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from cluster.check import HostChecked, HostCheckFailed


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
class CheckCrashed(Message):
    """A round of probes could not run at all (the inventory became invalid, say)."""

    error: str
