"""SQLite (WAL) persistence for the monitor: predictions waiting for labels (pending.py),
labels waiting for their prediction, and joined pairs.

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

import numpy as np

from serving.monitor.pending import PendingPredictions
from serving.monitor.records import PredictionBlock

SCHEMA = """
-- Pending predictions one row each, as monitors wrote them before pending_blocks
-- (serving/monitor/pending.py): still joined and pruned, never written.
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
CREATE INDEX IF NOT EXISTS labelled_version_label_ts ON labelled(version, label_ts);
CREATE TABLE IF NOT EXISTS rejected (
    request_id TEXT NOT NULL, version TEXT NOT NULL, role TEXT, prediction TEXT, proba TEXT,
    label TEXT, ts REAL, label_ts REAL, reason TEXT NOT NULL,
    PRIMARY KEY (request_id, version)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS versions (version TEXT PRIMARY KEY, task TEXT NOT NULL, classes TEXT);
CREATE TABLE IF NOT EXISTS labelled_totals (version TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS drift_bins (version TEXT NOT NULL, ts REAL NOT NULL, counts TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS drift_bins_version_ts ON drift_bins(version, ts);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
-- Labels kept for predictions still to come: joined = 0 when none of the request's
-- predictions had come, 1 when one had (a shadow's copy may come after the live one's).
CREATE TABLE IF NOT EXISTS waiting_labels (
    request_id TEXT PRIMARY KEY, label TEXT NOT NULL, received REAL NOT NULL,
    joined INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS waiting_labels_received ON waiting_labels(received);
CREATE TABLE IF NOT EXISTS inputs (
    request_id TEXT PRIMARY KEY, ts REAL NOT NULL, features TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS inputs_ts ON inputs(ts);
"""
_LABELLED_COLUMNS = "request_id, version, role, prediction, proba, label, ts, label_ts"


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


@dataclass(frozen=True)
class BadRow:
    """A labelled row that cannot be scored (unreadable, or a label the model cannot have)."""

    request_id: str
    version: str
    reason: str


@dataclass(frozen=True)
class VersionInfo:
    """What a model replica registered for its version, kept across monitor restarts."""

    task: str
    classes: list[Any] | None
    reference: dict[str, Any] | None


class MonitorStore:
    """One SQLite file per app on the node that runs its monitor.

    Not thread-safe on its own: one connection, manual transactions. The tracker serialises
    every call (a second BEGIN from another thread would fail mid-transaction).
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._migrate()
        self._pending = PendingPredictions(self._db)
        # Pending rows written one per prediction by an older monitor: still joined and
        # pruned until none are left.
        self._legacy = self._db.execute("SELECT 1 FROM predictions LIMIT 1").fetchone() is not None

    def _migrate(self) -> None:
        """Bring a file written by an older monitor up to this schema, keeping its records."""
        with self._tx():
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(versions)")}
            if "reference" not in columns:
                self._db.execute("ALTER TABLE versions ADD COLUMN reference TEXT")
            waiting = {row[1] for row in self._db.execute("PRAGMA table_info(waiting_labels)")}
            if "joined" not in waiting:
                self._db.execute(
                    "ALTER TABLE waiting_labels ADD COLUMN joined INTEGER NOT NULL DEFAULT 0"
                )
            if self._db.execute("SELECT 1 FROM labelled_totals LIMIT 1").fetchone() is None:
                self._db.execute(
                    "INSERT INTO labelled_totals SELECT version, COUNT(*) FROM labelled GROUP BY version"
                )

    def close(self) -> None:
        self._db.close()

    def add_block(self, block: PredictionBlock) -> None:
        """Store a block of predictions (one row) and the logged inputs of its rows."""
        with self._tx():
            self._pending.add(block)
            # One input per request id: a shadow's copy of a row has the same input.
            if block.features is not None:
                inputs = zip(
                    block.request_ids, block.ts, map(json.dumps, block.features), strict=True
                )
                self._db.executemany("INSERT OR IGNORE INTO inputs VALUES (?, ?, ?)", inputs)

    def join(self, request_id: str, label: Any, label_ts: float) -> list[Labelled]:
        """Move every version's prediction for `request_id` to `labelled`; [] when unknown."""
        return self.join_many([(request_id, label)], label_ts)[0]

    def join_many(
        self, pairs: list[tuple[str, Any]], label_ts: float, *, once: bool = False
    ) -> list[list[Labelled]]:
        """`join` for each (request_id, label), in one transaction (one fsync, not thousands).

        With `once`, a version already labelled for the request is not joined again (a
        block resent after its first copy was joined, meeting a label kept open)."""
        with self._tx():
            return [self._join(request_id, label, label_ts, once) for request_id, label in pairs]

    def _join(self, request_id: str, label: Any, label_ts: float, once: bool) -> list[Labelled]:
        found: list[tuple[Any, ...]] = list(self._pending.take(request_id))
        if self._legacy:
            found += self._db.execute(
                "SELECT request_id, version, role, prediction, proba, ts FROM predictions "
                "WHERE request_id = ?",
                (request_id,),
            ).fetchall()
            self._db.execute("DELETE FROM predictions WHERE request_id = ?", (request_id,))
        if found and once:
            done = {
                version
                for (version,) in self._db.execute(
                    "SELECT version FROM labelled WHERE request_id = ?", (request_id,)
                )
            }
            found = [row for row in found if row[1] not in done]
        if not found:
            return []
        label_text = json.dumps(label)
        self._db.executemany(
            "INSERT OR REPLACE INTO labelled VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(*row[:5], label_text, row[5], label_ts) for row in found],
        )
        self._db.executemany(
            "INSERT INTO labelled_totals VALUES (?, 1) ON CONFLICT(version) DO UPDATE SET n = n + 1",
            [(row[1],) for row in found],
        )
        # A damaged prediction row is not returned; reading the time window sets it aside.
        good, _ = _decode((*row[:5], label_text, row[5], label_ts) for row in found)
        return good

    def hold_labels(self, labels: list[tuple[str, Any, float]], *, joined: bool = False) -> None:
        """Keep labels for predictions still to come: (request_id, label, received). `joined`:
        one of the request's predictions has had it (kept for a shadow's, which may be later)."""
        if labels:
            with self._tx():
                self._db.executemany(
                    "INSERT OR REPLACE INTO waiting_labels VALUES (?, ?, ?, ?)",
                    [(rid, json.dumps(label), ts, int(joined)) for rid, label, ts in labels],
                )

    def waiting_labels_of(self, request_ids: list[str]) -> list[tuple[str, Any]]:
        """The kept labels of these requests, marked joined (they stay until they expire)."""
        out: list[tuple[str, Any]] = []
        with self._tx():
            for chunk, marks in _in_chunks(request_ids):
                rows = self._db.execute(
                    f"SELECT request_id, label FROM waiting_labels WHERE request_id IN ({marks})",
                    chunk,
                ).fetchall()
                self._db.execute(
                    f"UPDATE waiting_labels SET joined = 1 WHERE request_id IN ({marks})", chunk
                )
                for rid, label in rows:
                    try:
                        out.append((rid, json.loads(label)))
                    except ValueError:
                        continue  # written by json.dumps: unreadable only if the file was damaged
        return out

    def expire_waiting(self, received_before: float, cap: int) -> tuple[list[str], int]:
        """Kept labels older than `received_before`, and past `cap` the oldest (joined ones
        first): removed. Their
        request ids, and how many of them never met a prediction (the caller counts those as
        unknown)."""
        with self._tx():
            gone = self._db.execute(
                "SELECT request_id, joined FROM waiting_labels WHERE received < ?",
                (received_before,),
            ).fetchall()
            (count,) = self._db.execute("SELECT COUNT(*) FROM waiting_labels").fetchone()
            excess = count - len(gone) - cap
            if excess > 0:
                gone += self._db.execute(
                    "SELECT request_id, joined FROM waiting_labels WHERE received >= ? "
                    "ORDER BY joined DESC, received LIMIT ?",  # labels still unjoined go last
                    (received_before, excess),
                ).fetchall()
            ids = [rid for rid, _ in gone]
            for chunk, marks in _in_chunks(ids):
                self._db.execute(f"DELETE FROM waiting_labels WHERE request_id IN ({marks})", chunk)
        return ids, sum(1 for _, joined in gone if not joined)

    def waiting_ids(self) -> tuple[set[str], set[str]]:
        """Ids of the kept labels: those no prediction has had yet, and those one has."""
        never: set[str] = set()
        joined: set[str] = set()
        for rid, was_joined in self._db.execute("SELECT request_id, joined FROM waiting_labels"):
            (joined if was_joined else never).add(rid)
        return never, joined

    def was_labelled(self, request_id: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM labelled WHERE request_id = ? LIMIT 1", (request_id,)
        ).fetchone()
        return row is not None

    def labelled_versions(self) -> list[str]:
        return [v for (v,) in self._db.execute("SELECT DISTINCT version FROM labelled")]

    def recent_labelled(self, version: str, limit: int) -> tuple[list[Labelled], list[BadRow]]:
        """The version's last `limit` labelled pairs, oldest first, and any unreadable rows."""
        rows = self._db.execute(
            f"SELECT {_LABELLED_COLUMNS} FROM labelled WHERE version = ? "
            "ORDER BY label_ts DESC LIMIT ?",
            (version, limit),
        ).fetchall()
        return _decode(reversed(rows))

    def labelled_since(self, version: str, since: float) -> tuple[list[Labelled], list[BadRow]]:
        """The version's pairs labelled at or after `since` (by index, not a bounded cache)."""
        rows = self._db.execute(
            f"SELECT {_LABELLED_COLUMNS} FROM labelled WHERE version = ? AND label_ts >= ? "
            "ORDER BY label_ts",
            (version, since),
        ).fetchall()
        return _decode(rows)

    def labelled_totals(self) -> dict[str, int]:
        """Labelled pairs ever joined per version (pruning old rows does not lower it)."""
        return dict(self._db.execute("SELECT version, n FROM labelled_totals").fetchall())

    def reject(self, bad: list[BadRow]) -> None:
        """Move rows that cannot be scored out of `labelled` (kept in `rejected`, counted)."""
        if not bad:
            return
        with self._tx():
            for row in bad:
                moved = self._db.execute(
                    f"INSERT OR REPLACE INTO rejected SELECT {_LABELLED_COLUMNS}, ? FROM labelled "
                    "WHERE request_id = ? AND version = ?",
                    (row.reason, row.request_id, row.version),
                ).rowcount
                self._db.execute(
                    "DELETE FROM labelled WHERE request_id = ? AND version = ?",
                    (row.request_id, row.version),
                )
                self._db.execute(
                    "UPDATE labelled_totals SET n = MAX(n - ?, 0) WHERE version = ?",
                    (moved, row.version),
                )
            self._db.execute(
                "INSERT INTO counters VALUES ('invalid_labels', ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                (len(bad),),
            )

    def set_version(
        self,
        version: str,
        task: str,
        classes: list[Any] | None,
        reference: dict[str, Any] | None = None,
    ) -> None:
        """Record a version; a registration without a reference keeps the one stored."""
        self._db.execute(
            "INSERT INTO versions (version, task, classes, reference) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(version) DO UPDATE SET task = excluded.task, classes = excluded.classes, "
            "reference = COALESCE(excluded.reference, versions.reference)",
            (version, task, _dump(classes), _dump(reference)),
        )

    def versions(self) -> dict[str, VersionInfo]:
        rows = self._db.execute("SELECT version, task, classes, reference FROM versions").fetchall()
        out = {}
        for version, task, classes, reference in rows:
            try:
                out[version] = VersionInfo(task, _load(classes), _load(reference))
            except ValueError:  # an unreadable reference or class list: still score by task
                out[version] = VersionInfo(task, None, None)
        return out

    def add_bins(self, version: str, ts: float, counts: list[list[int]], keep_after: float) -> None:
        """Live feature-bin counts, kept for the drift window so a restart keeps drift too."""
        with self._tx():
            self._db.execute(
                "INSERT INTO drift_bins VALUES (?, ?, ?)", (version, ts, json.dumps(counts))
            )
            self._db.execute(
                "DELETE FROM drift_bins WHERE version = ? AND ts < ?", (version, keep_after)
            )

    def bins_since(self, since: float) -> list[tuple[str, float, list[list[int]]]]:
        out = []
        rows = self._db.execute(
            "SELECT version, ts, counts FROM drift_bins WHERE ts >= ? ORDER BY ts", (since,)
        )
        for version, ts, counts in rows:
            try:
                out.append((version, ts, json.loads(counts)))
            except ValueError:
                continue  # a damaged chunk only makes drift a little less precise
        return out

    def bump(self, counts: dict[str, int]) -> None:
        rows = [(k, v) for k, v in counts.items() if v]
        if not rows:
            return
        with self._tx():
            self._db.executemany(
                "INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                rows,
            )

    def counters(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT name, value FROM counters").fetchall())

    def prune(
        self, *, pending_before: float, max_pending: int, max_labelled: int, max_inputs: int = 0
    ) -> int:
        """Drop expired or excess pending predictions and the oldest labelled pairs; returns expired count."""
        with self._tx():
            expired = self._pending.prune(pending_before, max_pending)
            caps = [("labelled", "label_ts", max_labelled)]
            if self._legacy:
                expired += self._db.execute(
                    "DELETE FROM predictions WHERE ts < ?", (pending_before,)
                ).rowcount
                caps.append(("predictions", "ts", max(0, max_pending - self._pending.count)))
            for table, column, cap in (
                *caps,
                ("rejected", "label_ts", max_labelled),
                ("inputs", "ts", max_inputs),
            ):
                (count,) = self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
                if count > cap:  # drop the oldest rows (ties at the cut go too)
                    self._db.execute(
                        f"DELETE FROM {table} WHERE {column} <= "
                        f"(SELECT {column} FROM {table} ORDER BY {column} LIMIT 1 OFFSET ?)",
                        (count - cap - 1,),
                    )
            if self._legacy:
                self._legacy = (
                    self._db.execute("SELECT 1 FROM predictions LIMIT 1").fetchone() is not None
                )
        return int(expired)

    def pending_count(self) -> int:
        legacy = 0
        if self._legacy:
            legacy = int(self._db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])
        return self._pending.count + legacy

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _in_chunks(ids: list[str], size: int = 500) -> Iterable[tuple[list[str], str]]:
    """`ids` in chunks under SQLite's limit on bound variables, each with its `?,?,...`."""
    for i in range(0, len(ids), size):
        chunk = ids[i : i + size]
        yield chunk, ",".join("?" * len(chunk))


def _decode(
    rows: Iterable[tuple[Any, ...]],
) -> tuple[list[Labelled], list[BadRow]]:
    good: list[Labelled] = []
    bad: list[BadRow] = []
    for rid, ver, role, pred, proba, label, ts, lts in rows:
        try:
            good.append(
                Labelled(
                    rid,
                    ver,
                    role,
                    json.loads(pred),
                    _load_floats(proba),
                    json.loads(label),
                    ts,
                    lts,
                )
            )
        except (TypeError, ValueError) as exc:
            bad.append(BadRow(rid, ver, f"unreadable row: {exc}"))
    return good, bad


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _load_floats(value: bytes | str | None) -> list[float] | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        if len(value) % 8:
            raise ValueError(f"a probability blob of {len(value)} bytes")
        return list(np.frombuffer(value, dtype=np.float64).tolist())
    loaded = json.loads(value)
    return None if loaded is None else list(loaded)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)
