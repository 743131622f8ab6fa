"""The project's own exceptions: each one carries enough context to act on."""

from __future__ import annotations

from dataclasses import dataclass


class MlopsError(Exception):
    """Base of every error the operations layer raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an inventory, pinned to a place in a file."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        # Column 0: a format without columns worth pointing at (INI), so file:line.
        where = f"{self.file}:{self.line}" + (f":{self.column}" if self.column else "")
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class InventoryError(MlopsError):
    """The inventory cannot be used; lists every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        if not problems:
            raise ValueError("InventoryError needs at least one problem")
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(MlopsError):
    """The command line asked for something that does not exist or does not fit."""


class TransportError(MlopsError):
    """Talking to a host failed; `host` names it and the message says what to do."""

    def __init__(self, host: str, message: str) -> None:
        self.host = host
        self.reason = message
        super().__init__(f"{host}: {message}")


class HostUnreachable(TransportError):
    """No connection could be made (refused, timed out, DNS, jump host down)."""


class HostKeyMismatch(TransportError):
    """The host's key is not the one known_hosts expects: refuse, never guess."""


class AuthenticationFailed(TransportError):
    """The host answered but would not accept our key."""


class CommandTimeout(TransportError):
    """A remote command ran past its time limit and was stopped."""


class TransferError(TransportError):
    """An upload failed or arrived with different bytes than were sent."""


class StreamEnded(TransportError):
    """A command whose output was being followed ended, or its connection did."""


def reason_of(exc: BaseException) -> str:
    """What went wrong, for a message that already names the host."""
    if isinstance(exc, TransportError):
        return exc.reason
    if isinstance(exc, MlopsError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"  # not one of ours: its type says most
