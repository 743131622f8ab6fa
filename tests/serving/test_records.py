"""Prediction blocks: a replica's buffer keeps its bound, blocks reach SQLite intact (older
files' text probabilities still read), and a replica running older code is still heard."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from serving.drift import FeatureBins
from serving.instances import Batch
from serving.monitor.deployment import Monitor
from serving.monitor.records import (
    PredictionBlock,
    PredictionRecord,
    RecordBuffer,
    concat,
    from_records,
)
from serving.monitor.tracker import AccuracyTracker, MonitorSettings


def block(first: int, n: int, role: str = "live", probas: bool = True) -> PredictionBlock:
    ids = [f"r{first + i}" for i in range(n)]
    p = np.linspace(0, 1, n)
    return PredictionBlock.of_request(
        ids, "1", role, [int(x > 0.5) for x in p], np.c_[1 - p, p] if probas else None, 100.0
    )


def test_a_block_keeps_every_column_per_row() -> None:
    b = block(0, 3, role="shadow")
    assert len(b) == 3 and b.versions == ["1"] * 3 and b.roles == ["shadow"] * 3
    assert b.probas is not None and b.probas.dtype == np.float64 and b.probas.shape == (3, 2)
    with pytest.raises(ValueError, match="3 request ids for 2 predictions"):
        PredictionBlock.of_request(["a", "b", "c"], "1", "live", [0, 1], None, 1.0)


def test_blocks_join_where_their_columns_agree() -> None:
    joined = concat([block(0, 2), block(2, 3), block(5, 1, probas=False), block(6, 2)])
    assert [len(b) for b in joined] == [5, 1, 2]
    assert joined[0].request_ids == ["r0", "r1", "r2", "r3", "r4"]
    assert joined[0].probas is not None and joined[0].probas.shape == (5, 2)
    assert joined[1].probas is None


def test_the_buffer_drops_the_oldest_rows_past_its_limit_and_says_how_many() -> None:
    buffer = RecordBuffer(limit=5)
    assert buffer.add(block(0, 3)) == 0
    assert buffer.add(block(3, 4)) == 2  # r0 and r1 go; r2 stays, cut from its block
    assert len(buffer) == 5
    taken = buffer.take()
    assert len(buffer) == 0 and len(taken) == 1
    assert taken[0].request_ids == ["r2", "r3", "r4", "r5", "r6"]
    assert taken[0].probas is not None and len(taken[0].probas) == 5
    buffer.add(block(7, 2))
    assert buffer.give_back(taken) == 2  # a failed send goes back in front, still bounded
    assert buffer.take()[0].request_ids == ["r4", "r5", "r6", "r7", "r8"]


def test_probabilities_round_trip_exactly_and_old_text_rows_still_read(tmp_path: Path) -> None:
    tracker = AccuracyTracker(tmp_path / "m.sqlite", MonitorSettings(window_s=1e9))
    tracker.register("1", "classifier", [0, 1])
    probas = np.array([[0.1, 0.9], [1 / 3, 2 / 3], [0.7, 0.30000000000000004]])
    tracker.record(
        PredictionBlock.of_request(["a", "b", "c"], "1", "live", [1, 1, 0], probas, 100.0),
        now=100.0,
    )
    tracker.store.close()
    # A row written by an older monitor: probabilities as JSON text, in the same file.
    db = sqlite3.connect(tmp_path / "m.sqlite")
    db.execute("INSERT INTO predictions VALUES ('old', '1', 'live', '0', '[0.75, 0.25]', 100.0)")
    db.commit()
    db.close()
    again = AccuracyTracker(tmp_path / "m.sqlite", MonitorSettings(window_s=1e9))
    again.feedback([("a", 1), ("b", 0), ("c", 0), ("old", 0)], now=101.0)
    pairs = {x.request_id: x for x in again.store.labelled_since("1", 0.0)[0]}
    assert pairs["a"].proba == [0.1, 0.9] and pairs["c"].proba == probas[2].tolist()
    assert pairs["b"].proba == [1 / 3, 2 / 3]
    assert pairs["old"].proba == [0.75, 0.25] and pairs["old"].prediction == 0
    assert again.summary(now=102.0)["versions"]["1"]["last_n"]["n"] == 4


def test_predictions_keep_their_json_form(tmp_path: Path) -> None:
    """Ints, floats, strings and a NaN regression value are written as json.dumps would."""
    tracker = AccuracyTracker(tmp_path / "m.sqlite")
    for name, values in (
        ("i", [0, 7]),
        ("f", [0.5, 1e-7]),
        ("s", ["a", "b"]),
        ("n", [1.0, np.nan]),
    ):
        ids = [f"{name}0", f"{name}1"]
        tracker.record(PredictionBlock.of_request(ids, "1", "live", values, None, 1.0), now=1.0)
    pending = tracker.store._pending
    stored = {rid: pending.take(rid)[0][3] for rid in ("i0", "i1", "f1", "s0", "n1")}
    assert [stored["i0"], stored["i1"], stored["f1"], stored["s0"]] == ["0", "7", "1e-07", '"a"']
    assert stored["n1"] == "NaN"


def test_records_from_tests_and_tools_become_blocks() -> None:
    records = [
        PredictionRecord("a", "1", "live", 1, [0.2, 0.8], 1.0),
        PredictionRecord("b", "2", "canary", 0, [0.6, 0.4], 1.0),
        PredictionRecord("c", "r", "live", 2.5, None, 1.0),
    ]
    blocks = from_records(records)
    assert [b.request_ids for b in blocks] == [["a", "b"], ["c"]]
    assert blocks[0].versions == ["1", "2"] and blocks[0].roles == ["live", "canary"]


async def test_a_replica_running_older_code_is_still_recorded(tmp_path: Path) -> None:
    """Rows as tuples (before blocks): a monitor upgraded first still stores them."""
    cls = Monitor.func_or_class
    monitor = cls.__new__(cls)
    await monitor.__init__(app="m", state_dir=str(tmp_path))
    try:
        rows = [("t1", "1", "live", 1, [0.3, 0.7], time.time())]
        await monitor.record(rows)  # type: ignore[arg-type]
        await monitor.record([block(0, 2)])
        assert (await monitor.summary())["feedback"]["pending_predictions"] == 3
    finally:
        monitor._exporter.cancel()
        monitor.tracker.store.close()


def test_float32_rows_bin_exactly_as_float64_comparisons_would() -> None:
    """Edges rounded up to float32: values on, just below and just above every edge."""
    rng = np.random.default_rng(5)
    edges = np.sort(rng.normal(size=(3, 9)), axis=1)
    reference = {
        "features": [
            {"name": f"f{j}", "edges": edges[j].tolist(), "fractions": [0.1] * 11} for j in range(3)
        ]
    }
    near = []
    for j in range(3):
        e32 = edges[j].astype(np.float32)
        column = np.concatenate(
            [e32, np.nextafter(e32, np.float32(-np.inf)), np.nextafter(e32, np.float32(np.inf))]
        )
        near.append(np.concatenate([column, rng.normal(size=500).astype(np.float32)]))
    numbers = np.stack(near, axis=1).astype(np.float32)
    numbers[::17, 1] = np.nan
    bins = FeatureBins(reference)
    bins.add(Batch.of_numbers(numbers))
    counts = bins.take()
    assert counts is not None
    for j in range(3):
        column = numbers[:, j].astype(np.float64)
        present = column[~np.isnan(column)]
        expected = np.bincount(np.searchsorted(edges[j], present, side="right"), minlength=10)
        assert counts[j][:10] == expected.tolist()
        assert counts[j][10] == int(np.isnan(column).sum())
