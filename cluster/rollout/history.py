"""The rollout history: an append-only JSON-lines file next to the inventory.

Nothing in it is ever rewritten; a swap's start, steps, gate values and outcome are separate
lines, so an interrupted swap still leaves its trail (and a final line saying how it ended).
"""

from __future__ import annotations

import fcntl
import getpass
import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("mlops_tui.history")


def history_path(inventory_path: Path) -> Path:
    return inventory_path.with_name(inventory_path.stem + ".history.jsonl")


class History:
    """Appends one JSON object per line, flushed and fsynced, so a crash loses nothing written.

    Each append holds an exclusive lock on the file, so two operators' (or a console's and a
    CI job's) lines never interleave; a torn last line left by a crash is ended first, so the
    next line is whole."""

    def __init__(self, path: Path, swap_id: str | None = None) -> None:
        self.path = path
        self.swap_id = swap_id
        self.who = f"{getpass.getuser()}@{socket.gethostname()}"

    def append(self, kind: str, **fields: Any) -> dict[str, Any]:
        entry = {
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "who": self.who,
            "swap": self.swap_id,
            "kind": kind,
            **fields,
        }
        log.info("%s %s: %s", fields.get("app", "?"), kind,
                 " ".join(f"{k}={v}" for k, v in fields.items() if k != "app"))  # fmt: skip
        line = (json.dumps(entry) + "\n").encode()
        with self.path.open("ab+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # released when the file is closed
            size = fh.seek(0, os.SEEK_END)
            if size:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    line = b"\n" + line
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        return entry


def close_unfinished(path: Path, app: str, found_by: str) -> list[str]:
    """End every swap of `app` that started and never finished (its process was killed: only
    called with the app's leases held, so none of them is still running) with an
    `interrupted` outcome; what was said, one line per swap."""
    entries = read_history(path, app)
    finished = {e.get("swap") for e in entries if e.get("kind") == "swap_finished"}
    said = []
    for entry in entries:
        swap_id = entry.get("swap")
        if entry.get("kind") != "swap_started" or swap_id in finished:
            continue
        detail = (f"the swap to {entry.get('to')} started at {entry.get('at')} by "
                  f"{entry.get('who')} never finished (its process was killed); found by "
                  f"`{found_by}`")  # fmt: skip
        History(path, swap_id).append(
            "swap_finished", app=app, outcome="interrupted", detail=detail, to=entry.get("to"),
            found_by=found_by,
        )  # fmt: skip
        finished.add(swap_id)
        said.append(detail)
    return said


def read_history(path: Path, app: str | None = None) -> list[dict[str, Any]]:
    """The history's entries (of `app`), oldest first; unreadable lines are left out (see
    history_problems for what they were)."""
    return _read(path, app)[0]


def history_problems(path: Path) -> list[str]:
    """One message per line that is not a JSON object, naming the file and line; a torn last
    line (a crash mid-write) is said to be one."""
    return _read(path, None)[1]


def _read(path: Path, app: str | None) -> tuple[list[dict[str, Any]], list[str]]:
    if not path.exists():
        return [], []
    with path.open("rb") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_SH)  # not halfway through someone's append
        data = fh.read()
    out: list[dict[str, Any]] = []
    problems: list[str] = []
    lines = data.decode("utf-8", "replace").split("\n")
    torn = lines[-1] != ""  # a whole file ends with a newline
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not isinstance(entry, dict):
            last = number == len(lines) and torn
            problems.append(
                f"{path}:{number}: "
                + (
                    "a torn last line (a write cut short), skipped"
                    if last
                    else "not a JSON object, skipped"
                )
            )
            continue
        if app is None or entry.get("app") == app:
            out.append(entry)
    return out, problems


@dataclass(frozen=True)
class HistoryEntry:
    """One line of the history, with the one-line summary the CLI and the console both show."""

    at: str
    who: str
    app: str
    kind: str
    swap: str | None
    fields: dict[str, Any]  # the whole line as written, for --json

    @property
    def what(self) -> str:
        f = self.fields
        if self.kind == "gates":
            return ", ".join(
                f"{r.get('gate')}={_short(r.get('value'))} {'ok' if r.get('passed') else 'FAIL'}"
                for r in f.get("results") or []
                if isinstance(r, dict)
            )
        if self.kind == "swap_started":
            gates = ", ".join(str(g) for g in f.get("gates") or []) or (
                "--no-gates" if f.get("no_gates") else "no gates"
            )
            return f"to {f.get('to')} ({f.get('strategy')}; {gates})"
        where = f"{f['cluster']}: " if f.get("cluster") else ""
        text = f.get("detail") or f.get("outcome") or f.get("to") or ""
        if self.kind == "swap_finished" and f.get("outcome") and f.get("detail"):
            text = f"{f['outcome']}: {f['detail']}"
        elif self.kind == "step" and f.get("phase"):
            text = f"{f['phase']}: {text}"
        return f"{where}{text}"

    @property
    def outcome(self) -> str | None:
        value = self.fields.get("outcome")
        return str(value) if value is not None else None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.fields)


def history_entries(path: Path, app: str | None = None) -> list[HistoryEntry]:
    """The history as typed entries, oldest first."""
    return [
        HistoryEntry(
            str(e.get("at", "")),
            str(e.get("who", "")),
            str(e.get("app", "")),
            str(e.get("kind", "")),
            e.get("swap") if isinstance(e.get("swap"), str) else None,
            e,
        )
        for e in read_history(path, app)
    ]


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def previous_version(path: Path, app: str) -> str | None:
    """The version the app's last promoted swap replaced: what `rollback` goes back to once
    the old replicas were retired."""
    for entry in reversed(read_history(path, app)):
        if entry.get("kind") == "swap_finished" and entry.get("outcome") == "promoted":
            found = entry.get("from")
            return str(found) if found is not None else None
    return None
