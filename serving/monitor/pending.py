"""Predictions waiting for their label: one SQLite row per flushed block, an index in memory.

Most predictions never get a label, or get it long after; each used to be one row of an
indexed table, written once and deleted by the next prune (5.3 µs of the monitor's CPU a
row at 11,500 rows a second). A block is written as one row instead (its columns as text
and float64 bytes), and a dict from request id to its block and row finds a row when its
label comes. A joined row is marked in `pending_taken`, so a restart rebuilds the index
without it; a block goes once its rows are all joined, expired, over the cap or sent again
in a newer block (a flush retried after its answer was lost: the newer copy is kept).

Every method runs inside the caller's transaction (MonitorStore's).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from serving.monitor.records import PredictionBlock

SCHEMA = """
CREATE TABLE IF NOT EXISTS pending_blocks (
    id INTEGER PRIMARY KEY, version TEXT NOT NULL, ts_max REAL NOT NULL, n INTEGER NOT NULL,
    request_ids TEXT NOT NULL, roles TEXT NOT NULL, predictions TEXT NOT NULL,
    probas BLOB, width INTEGER NOT NULL, ts BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS pending_taken (
    block INTEGER NOT NULL, row INTEGER NOT NULL, PRIMARY KEY (block, row)) WITHOUT ROWID;
"""
ROW_BITS = 24  # a block holds at most 2**24 rows (a replica buffers 50,000 at most)
ROW_MASK = (1 << ROW_BITS) - 1
DECODED_KEPT = 16  # blocks kept decoded: labels tend to come in the order of their requests

# One pending row as the labelled table takes it: request_id, version, role, prediction
# (JSON text), proba (float64 bytes or None), ts.
Row = tuple[str, str, str, str, bytes | None, float]


@dataclass(frozen=True)
class _Decoded:
    version: str
    roles: list[str]
    predictions: list[Any]
    probas: bytes | None
    width: int
    ts: list[float]

    def row(self, request_id: str, i: int) -> Row:
        proba = None
        if self.probas is not None:
            size = 8 * self.width
            proba = self.probas[i * size : (i + 1) * size]
        return (request_id, self.version, self.roles[i], json.dumps(self.predictions[i]), proba,
                self.ts[i])  # fmt: skip


class PendingPredictions:
    """The pending predictions of every version of one app."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        db.executescript(SCHEMA)
        # version -> request id -> block << ROW_BITS | row (one int: a tuple per row cost
        # 80 bytes more); a request id is pending once per version (a shadow's copy of a
        # request is the same id under another version).
        self._index: dict[str, dict[str, int]] = {}
        self._live: dict[int, int] = {}  # block -> rows still pending, oldest block first
        self._ts_max: dict[int, float] = {}
        self._version_of: dict[int, str] = {}
        self._decoded: OrderedDict[int, _Decoded] = OrderedDict()
        self.count = 0
        self._load()

    def _load(self) -> None:
        """The index from the blocks on disk, as it was: rows marked taken left out, and of
        an id pending in two blocks of a version, the newer copy kept."""
        taken: dict[int, set[int]] = {}
        for block, row in self._db.execute("SELECT block, row FROM pending_taken"):
            taken.setdefault(block, set()).add(row)
        blocks = self._db.execute(
            "SELECT id, version, ts_max, request_ids FROM pending_blocks ORDER BY id"
        ).fetchall()
        for block, version, ts_max, ids_text in blocks:
            try:
                ids = _load_texts(ids_text)
            except ValueError:
                continue  # written by join or json.dumps: unreadable only if damaged
            skip = taken.get(block, set())
            index = self._index.setdefault(version, {})
            index.update(zip(ids, _positions(block, len(ids)), strict=True))
            for i in skip:  # joined: this copy, and any older one it replaced, are done
                if i < len(ids):
                    index.pop(ids[i], None)
            self._ts_max[block] = ts_max
            self._version_of[block] = version
        live = Counter(p >> ROW_BITS for index in self._index.values() for p in index.values())
        for block in list(self._ts_max):
            self._live[block] = live[block]
            self.count += live[block]
            if not live[block]:
                self._drop(block)

    def add(self, block: PredictionBlock) -> None:
        """Store a replica's block: one row per version in it (one, but for tests and tools)."""
        for part in _by_version(block):
            self._add(part)

    def _add(self, part: PredictionBlock) -> None:
        version = part.versions[0]
        n = len(part)
        width = 0 if part.probas is None else int(part.probas.shape[1])
        probas = None if part.probas is None else _float64_bytes(part.probas)
        ts_max = max(part.ts)
        cursor = self._db.execute(
            "INSERT INTO pending_blocks (version, ts_max, n, request_ids, roles, predictions, "
            "probas, width, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (version, ts_max, n, _dump_texts(part.request_ids), _dump_texts(part.roles),
             json.dumps(part.predictions), probas, width, _float64_bytes(np.asarray(part.ts))),
        )  # fmt: skip
        block = int(cursor.lastrowid or 0)
        index = self._index.setdefault(version, {})
        ids = part.request_ids
        before = len(index)
        index.update(zip(ids, _positions(block, n), strict=True))  # in C
        live = len(index) - before
        self._version_of[block] = version
        self._ts_max[block] = ts_max
        if live != n:  # a resent block, or a row pending already: the newest copy is kept
            self._live[block] = 0
            self._recount(version)
            return
        self._live[block] = live
        self.count += live

    def _recount(self, version: str) -> None:
        """Rows still pending per block of a version, from the index (after a resent block)."""
        live = Counter(p >> ROW_BITS for p in self._index.get(version, {}).values())
        for block in [b for b, v in self._version_of.items() if v == version]:
            self.count += live[block] - self._live[block]
            self._live[block] = live[block]
            if not live[block]:
                self._drop(block)

    def take(self, request_id: str) -> list[Row]:
        """Every version's pending row for this request, removed from the pending set."""
        out: list[Row] = []
        for index in self._index.values():
            found = index.pop(request_id, None)
            if found is None:
                continue
            block, i = found >> ROW_BITS, found & ROW_MASK
            decoded = self._decode(block)
            if decoded is not None:
                out.append(decoded.row(request_id, i))
                self._db.execute("INSERT OR IGNORE INTO pending_taken VALUES (?, ?)", (block, i))
            self.count -= 1
            self._live[block] -= 1
            if self._live[block] <= 0:
                self._drop(block)
        return out

    def prune(self, before: float, cap: int) -> int:
        """Drop blocks whose rows are all older than `before`, then the oldest blocks while more
        than `cap` rows are pending; how many rows expired (the cap's are not counted)."""
        expired = 0
        for block in list(self._live):
            if self._ts_max[block] >= before:
                break
            expired += self._live[block]
            self._forget(block)
        for block in list(self._live):
            if self.count <= cap:
                break
            self._forget(block)
        return expired

    def _forget(self, block: int) -> None:
        """A block leaving with rows still pending: those rows leave the index first."""
        if self._live[block]:
            row = self._db.execute(
                "SELECT version, n, request_ids FROM pending_blocks WHERE id = ?", (block,)
            ).fetchone()
            if row is not None:
                index = self._index.get(row[0], {})
                ids = _load_texts(row[2])
                if self._live[block] == row[1]:  # every row of it still pending: pop all, in C
                    deque(map(index.pop, ids), maxlen=0)
                else:  # some taken, or held by a newer copy: only its own entries go
                    for i, request_id in enumerate(ids):
                        if index.get(request_id) == (block << ROW_BITS | i):
                            del index[request_id]
            self.count -= self._live[block]
        self._drop(block)

    def _drop(self, block: int) -> None:
        self._db.execute("DELETE FROM pending_blocks WHERE id = ?", (block,))
        self._db.execute("DELETE FROM pending_taken WHERE block = ?", (block,))
        self._live.pop(block, None)
        self._ts_max.pop(block, None)
        self._version_of.pop(block, None)
        self._decoded.pop(block, None)

    def _decode(self, block: int) -> _Decoded | None:
        if block in self._decoded:
            self._decoded.move_to_end(block)
            return self._decoded[block]
        row = self._db.execute(
            "SELECT version, roles, predictions, probas, width, ts FROM pending_blocks WHERE id = ?",
            (block,),
        ).fetchone()
        if row is None:
            return None
        try:
            version, roles, predictions, probas, width, ts = row
            decoded = _Decoded(
                version, _load_texts(roles), json.loads(predictions), probas, width,
                np.frombuffer(ts, dtype=np.float64).tolist(),
            )  # fmt: skip
        except ValueError:
            return None  # written by json.dumps: unreadable only if the file was damaged
        self._decoded[block] = decoded
        if len(self._decoded) > DECODED_KEPT:
            self._decoded.popitem(last=False)
        return decoded


def _positions(block: int, n: int) -> range:
    if n > ROW_MASK:
        raise ValueError(f"a block of {n} rows; at most {ROW_MASK}")
    return range(block << ROW_BITS, (block << ROW_BITS) + n)


def _by_version(block: PredictionBlock) -> list[PredictionBlock]:
    versions = sorted(set(block.versions))
    if len(versions) == 1:
        return [block]
    return [block[[i for i, v in enumerate(block.versions) if v == version]]
            for version in versions]  # fmt: skip


def _dump_texts(values: list[str]) -> str:
    """Strings one per line (ids are hex, roles words: `join` in C), or JSON for any that
    holds a line break (or when the text would read as JSON)."""
    text = "\n".join(values)
    if text.count("\n") == len(values) - 1 and not text.startswith("["):
        return text
    return json.dumps(values)


def _load_texts(text: str) -> list[str]:
    if text.startswith("["):
        loaded = json.loads(text)
        if not isinstance(loaded, list):
            raise ValueError("not a list")
        return [str(v) for v in loaded]
    return text.split("\n")


def _float64_bytes(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array, dtype=np.float64).tobytes()
