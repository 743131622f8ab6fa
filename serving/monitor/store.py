"""SQLite (WAL) persistence for the monitor: predictions waiting for labels, and joined pairs.

Everything the monitor knows is here first, so a restarted monitor (or replica) loses no
labelled record and late labels still find their prediction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    request_id TEXT NOT NULL, version TEXT NOT NULL, role TEXT NOT NULL,
    prediction TEXT NOT NULL, proba TEXT, ts REAL NOT NULL,
    PRIMARY KEY (request_id, version)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS predictions_ts ON predictions(ts);
CREATE TABLE IF NOT EXISTS labelled (
    request_id TEXT NOT NULL, version TEXT NOT NULL, role TEXT NOT NULL,
    prediction TEXT NOT NULL, proba TEXT, label TEXT NOT NULL, ts REAL NOT NULL, label_ts REAL NOT NULL,
    PRIMARY KEY (request_id, version)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS labelled_label_ts ON labelled(label_ts);
CREATE TABLE IF NOT EXISTS versions (version TEXT PRIMARY KEY, task TEXT NOT NULL, classes TEXT);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class PredictionRecord:
    """One row's prediction, as a replica reports it."""

    request_id: str
    version: str
    role: str  # "live", "canary" or "shadow"
    prediction: Any
    proba: list[float] | None
    ts: float


@dataclass(frozen=True)
class Labelled:
    """A prediction joined with its ground truth."""

    request_id: str
    version: str
    role: str
    prediction: Any
    proba: list[float] | None
    label: Any
    ts: float
    label_ts: float


class MonitorStore:
    """One SQLite file per app on the node that runs its monitor."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add_predictions(self, records: Iterable[PredictionRecord]) -> None:
        rows = [
            (r.request_id, r.version, r.role, json.dumps(r.prediction), _dump(r.proba), r.ts)
            for r in records
        ]
        with self._tx():
            self._db.executemany(
                "INSERT OR IGNORE INTO predictions VALUES (?, ?, ?, ?, ?, ?)", rows
            )

    def join(self, request_id: str, label: Any, label_ts: float) -> list[Labelled]:
        """Move every version's prediction for `request_id` to `labelled`; [] when unknown."""
        with self._tx():
            found = self._db.execute(
                "SELECT request_id, version, role, prediction, proba, ts FROM predictions WHERE request_id = ?",
                (request_id,),
            ).fetchall()
            if not found:
                return []
            out = [
                Labelled(rid, ver, role, json.loads(pred), _load(proba), label, ts, label_ts)
                for rid, ver, role, pred, proba, ts in found
            ]
            self._db.executemany(
                "INSERT OR REPLACE INTO labelled VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        x.request_id,
                        x.version,
                        x.role,
                        json.dumps(x.prediction),
                        _dump(x.proba),
                        json.dumps(label),
                        x.ts,
                        label_ts,
                    )
                    for x in out
                ],
            )
            self._db.execute("DELETE FROM predictions WHERE request_id = ?", (request_id,))
        return out

    def was_labelled(self, request_id: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM labelled WHERE request_id = ? LIMIT 1", (request_id,)
        ).fetchone()
        return row is not None

    def recent_labelled(self, limit: int) -> list[Labelled]:
        rows = self._db.execute(
            "SELECT request_id, version, role, prediction, proba, label, ts, label_ts FROM labelled "
            "ORDER BY label_ts DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            Labelled(rid, ver, role, json.loads(pred), _load(proba), json.loads(label), ts, lts)
            for rid, ver, role, pred, proba, label, ts, lts in reversed(rows)
        ]

    def set_version(self, version: str, task: str, classes: list[Any] | None) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO versions VALUES (?, ?, ?)", (version, task, _dump(classes))
        )

    def versions(self) -> dict[str, tuple[str, list[Any] | None]]:
        rows = self._db.execute("SELECT version, task, classes FROM versions").fetchall()
        return {v: (task, _load(classes)) for v, task, classes in rows}

    def bump(self, counts: dict[str, int]) -> None:
        with self._tx():
            self._db.executemany(
                "INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                [(k, v) for k, v in counts.items() if v],
            )

    def counters(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT name, value FROM counters").fetchall())

    def prune(self, *, pending_before: float, max_pending: int, max_labelled: int) -> int:
        """Drop expired or excess pending predictions and the oldest labelled pairs; returns expired count."""
        with self._tx():
            expired = self._db.execute(
                "DELETE FROM predictions WHERE ts < ?", (pending_before,)
            ).rowcount
            for table, column, cap in (
                ("predictions", "ts", max_pending),
                ("labelled", "label_ts", max_labelled),
            ):
                (count,) = self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
                if count > cap:  # drop the oldest rows (ties at the cut go too)
                    self._db.execute(
                        f"DELETE FROM {table} WHERE {column} <= "
                        f"(SELECT {column} FROM {table} ORDER BY {column} LIMIT 1 OFFSET ?)",
                        (count - cap - 1,),
                    )
        return int(expired)

    def pending_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)
