"""The rollout history: an append-only JSON-lines file next to the inventory.

Nothing in it is ever rewritten; a swap's start, steps, gate values and outcome are separate
lines, so an interrupted swap still leaves its trail (and a final line saying how it ended).
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
from pathlib import Path
from typing import Any


def history_path(inventory_path: Path) -> Path:
    return inventory_path.with_name(inventory_path.stem + ".history.jsonl")


class History:
    """Appends one JSON object per line, flushed and fsynced, so a crash loses nothing written."""

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
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return entry


def read_history(path: Path, app: str | None = None) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a torn last line from a crash is skipped, not fatal
        if app is None or entry.get("app") == app:
            out.append(entry)
    return out
