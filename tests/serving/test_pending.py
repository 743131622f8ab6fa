"""Pending predictions stored a block per row: joins find every version's row, a restart
rebuilds the index without the rows already joined, prunes count what expires, and rows an
older monitor wrote one per prediction still join."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from serving.monitor.records import PredictionBlock
from serving.monitor.store import MonitorStore


def block(first: int, n: int, version: str = "1", ts: float = 100.0) -> PredictionBlock:
    ids = [f"r{first + i}" for i in range(n)]
    p = np.linspace(0, 1, n)
    return PredictionBlock.of_request(
        ids, version, "shadow" if version == "2" else "live", [i % 2 for i in range(n)],
        np.c_[1 - p, p], ts,
    )  # fmt: skip


def test_a_label_joins_every_versions_row_once(tmp_path: Path) -> None:
    store = MonitorStore(tmp_path / "m.sqlite")
    store.add_block(block(0, 5))
    store.add_block(block(0, 5, version="2"))  # the shadow's copy of the same requests
    assert store.pending_count() == 10
    joined = store.join("r3", 1, 200.0)
    assert sorted((x.version, x.role, x.prediction, x.label) for x in joined) == [
        ("1", "live", 1, 1),
        ("2", "shadow", 1, 1),
    ]
    assert joined[0].proba == [0.25, 0.75] and joined[0].ts == 100.0
    assert store.pending_count() == 8
    assert store.join("r3", 1, 201.0) == []  # taken: a second label finds nothing pending


def test_a_restart_keeps_what_is_pending_and_forgets_what_was_joined(tmp_path: Path) -> None:
    store = MonitorStore(tmp_path / "m.sqlite")
    store.add_block(block(0, 4))
    store.join_many([("r1", 0), ("r2", 1)], 200.0)
    store.close()
    again = MonitorStore(tmp_path / "m.sqlite")
    assert again.pending_count() == 2
    assert again.join("r1", 0, 300.0) == []
    assert [x.request_id for x in again.join("r3", 1, 300.0)] == ["r3"]
    assert again.pending_count() == 1


def test_a_resent_block_adds_nothing(tmp_path: Path) -> None:
    """A flush the monitor stored but whose answer the replica never saw comes again."""
    store = MonitorStore(tmp_path / "m.sqlite")
    store.add_block(block(0, 3))
    store.add_block(block(0, 3))
    store.add_block(block(2, 3))  # r2 again, r3 and r4 new
    assert store.pending_count() == 5
    assert len(store.join("r2", 1, 200.0)) == 1
    (blocks,) = store._db.execute("SELECT COUNT(*) FROM pending_blocks").fetchone()
    assert blocks == 2  # the first copy, its rows all in later ones, is gone
    store.close()
    again = MonitorStore(tmp_path / "m.sqlite")  # rebuilt from disk: the same rows pending
    assert again.pending_count() == 4
    assert [len(again.join(f"r{i}", 1, 300.0)) for i in range(6)] == [1, 1, 0, 1, 1, 0]
    assert again.pending_count() == 0


def test_prunes_count_expired_rows_and_keep_the_cap(tmp_path: Path) -> None:
    store = MonitorStore(tmp_path / "m.sqlite")
    store.add_block(block(0, 10, ts=100.0))
    store.add_block(block(10, 10, ts=200.0))
    store.add_block(block(20, 10, ts=300.0))
    store.join("r0", 1, 150.0)
    expired = store.prune(pending_before=250.0, max_pending=100, max_labelled=100)
    assert expired == 19  # the first two blocks, less the joined row
    assert store.pending_count() == 10
    assert store.join("r15", 1, 400.0) == []  # expired: gone from the index too
    store.add_block(block(30, 10, ts=400.0))
    assert store.prune(pending_before=0.0, max_pending=15, max_labelled=100) == 0
    assert store.pending_count() == 10  # the oldest block went for the cap, not counted
    assert store.join("r25", 1, 500.0) == [] and len(store.join("r35", 1, 500.0)) == 1
    (taken,) = store._db.execute("SELECT COUNT(*) FROM pending_taken").fetchone()
    assert taken == 1  # marks leave with their block


def test_rows_an_older_monitor_wrote_one_per_prediction_still_join(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    MonitorStore(path).close()
    db = sqlite3.connect(path)
    db.executemany(
        "INSERT INTO predictions VALUES (?, '1', 'live', '1', '[0.5, 0.5]', ?)",
        [("old1", 100.0), ("old2", 100.0), ("old3", 300.0)],
    )
    db.commit()
    db.close()
    store = MonitorStore(path)
    store.add_block(block(0, 2, ts=300.0))
    assert store.pending_count() == 5
    (joined,) = store.join("old1", 0, 200.0)
    assert joined.proba == [0.5, 0.5] and joined.prediction == 1
    assert store.prune(pending_before=250.0, max_pending=100, max_labelled=100) == 1  # old2
    assert store.pending_count() == 3
    store.join("old3", 1, 400.0)
    store.prune(pending_before=0.0, max_pending=100, max_labelled=100)
    assert not store._legacy and store.pending_count() == 2


def test_a_block_of_two_versions_is_stored_a_row_per_version(tmp_path: Path) -> None:
    store = MonitorStore(tmp_path / "m.sqlite")
    mixed = PredictionBlock(
        ["a", "b", "a"], ["1", "1", "2"], ["live", "live", "shadow"], [0, 1, 1],
        np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]]), [1.0, 1.0, 2.0],
    )  # fmt: skip
    store.add_block(mixed)
    assert store._db.execute("SELECT version, n FROM pending_blocks").fetchall() == [
        ("1", 2),
        ("2", 1),
    ]
    joined = sorted((x.version, x.prediction, x.proba, x.ts) for x in store.join("a", 1, 5.0))
    assert joined == [("1", 0, [0.9, 0.1], 1.0), ("2", 1, [0.3, 0.7], 2.0)]
