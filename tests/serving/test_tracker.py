"""The accuracy monitor: joins late labels, equals scikit-learn, survives restarts, stays bounded."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics

from serving.monitor.records import PredictionRecord
from serving.monitor.tracker import AccuracyTracker, MonitorSettings


def records(
    version: str,
    preds: list,
    probas: list | None,
    start: int = 0,
    role: str = "live",
    ts: float | None = None,
) -> list[PredictionRecord]:  # type: ignore[type-arg]
    when = time.time() if ts is None else ts
    return [
        PredictionRecord(f"r{start + i}", version, role, p, probas[i] if probas else None, when)
        for i, p in enumerate(preds)
    ]


def test_binary_scores_equal_sklearn(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400).tolist()
    p1 = rng.uniform(size=400)
    pred = (p1 > 0.5).astype(int).tolist()
    probas = [[1 - a, a] for a in p1.tolist()]
    t = AccuracyTracker(tmp_path / "m.sqlite", MonitorSettings(window_n=300, window_s=1e9))
    t.register("1", "classifier", [0, 1])
    t.record(records("1", pred, probas, ts=1000.0), now=1000.0)
    result = t.feedback([(f"r{i}", y[i]) for i in range(400)], now=1001.0)
    assert result == {"received": 400, "joined": 400, "duplicate": 0, "waiting": 0}
    last = t.summary(now=1002.0)["versions"]["1"]["last_n"]
    yt, yp, pp = y[-300:], pred[-300:], p1[-300:]
    assert last["n"] == 300
    assert last["accuracy"] == pytest.approx(metrics.accuracy_score(yt, yp), abs=1e-12)
    assert last["precision"] == pytest.approx(metrics.precision_score(yt, yp), abs=1e-12)
    assert last["recall"] == pytest.approx(metrics.recall_score(yt, yp), abs=1e-12)
    assert last["f1"] == pytest.approx(metrics.f1_score(yt, yp), abs=1e-12)
    assert last["roc_auc"] == pytest.approx(metrics.roc_auc_score(yt, pp), abs=1e-12)


def test_multiclass_and_string_labels_equal_sklearn(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    classes = ["a", "b", "c"]
    y = rng.choice(classes, 200).tolist()
    raw = rng.dirichlet([1, 1, 1], 200)
    pred = [classes[i] for i in raw.argmax(axis=1)]
    t = AccuracyTracker(tmp_path / "m.sqlite")
    t.register("7", "classifier", classes)
    t.record(records("7", pred, raw.tolist()))
    t.feedback([(f"r{i}", y[i]) for i in range(200)])
    last = t.summary()["versions"]["7"]["last_n"]
    assert last["accuracy"] == pytest.approx(metrics.accuracy_score(y, pred))
    assert last["f1"] == pytest.approx(metrics.f1_score(y, pred, average="macro"))
    assert last["roc_auc"] == pytest.approx(
        metrics.roc_auc_score(y, raw, multi_class="ovr", labels=classes)
    )


def test_regressor_scores_equal_sklearn(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    y = rng.normal(size=100).tolist()
    pred = (np.asarray(y) + rng.normal(scale=0.3, size=100)).tolist()
    t = AccuracyTracker(tmp_path / "m.sqlite")
    t.register("1", "regressor", None)
    t.record(records("1", pred, None))
    t.feedback([(f"r{i}", y[i]) for i in range(100)])
    last = t.summary()["versions"]["1"]["last_n"]
    assert last["mse"] == pytest.approx(metrics.mean_squared_error(y, pred))
    assert last["mae"] == pytest.approx(metrics.mean_absolute_error(y, pred))


def test_time_window_counts_only_recent_labels(tmp_path: Path) -> None:
    t = AccuracyTracker(tmp_path / "m.sqlite", MonitorSettings(window_s=60))
    t.register("1", "classifier", [0, 1])
    t.record(records("1", [1, 1, 0, 0], None, ts=990.0), now=990.0)
    t.feedback([("r0", 1), ("r1", 0)], now=1000.0)
    t.feedback([("r2", 0), ("r3", 0)], now=1100.0)
    summary = t.summary(now=1120.0)["versions"]["1"]
    assert summary["last_n"]["n"] == 4 and summary["last_n"]["accuracy"] == 0.75
    assert summary["last_s"]["n"] == 2 and summary["last_s"]["accuracy"] == 1.0


def test_unknown_duplicate_and_late_feedback(tmp_path: Path) -> None:
    t = AccuracyTracker(tmp_path / "m.sqlite", MonitorSettings(orphan_grace_s=10))
    t.register("1", "classifier", [0, 1])
    t.record(records("1", [1], None, ts=100.0), now=100.0)
    assert t.feedback([("r0", 1), ("r0", 1), ("nope", 0), ("early", 1)], now=101.0) == {
        "received": 4,
        "joined": 1,
        "duplicate": 1,
        "waiting": 2,
    }
    # "early" arrives as a prediction within the grace period: joined then.
    t.record([PredictionRecord("early", "1", "live", 1, None, 102.0)], now=102.0)
    assert t.summary(now=103.0)["versions"]["1"]["last_n"]["n"] == 2
    # "nope" never shows up: counted as unknown once the grace period is over.
    t.feedback([], now=200.0)
    counters = t.summary(now=200.0)["feedback"]
    assert counters["unknown"] == 1 and counters["waiting"] == 0 and counters["duplicate"] == 1


def test_restart_loses_no_labelled_record(tmp_path: Path) -> None:
    db = tmp_path / "m.sqlite"
    t = AccuracyTracker(db)
    t.register("1", "classifier", [0, 1])
    t.register("2", "classifier", [0, 1])
    t.record(
        records("1", [0, 1, 1], [[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]])
        + records("2", [0], None, start=10, role="shadow")
    )
    t.feedback([("r0", 0), ("r1", 0)])
    before = t.summary()
    t.store.close()
    again = AccuracyTracker(db)
    after = again.summary()
    assert after["versions"] == before["versions"]
    # A prediction made before the restart still joins a label that arrives after it.
    assert again.feedback([("r2", 1), ("r10", 1)])["joined"] == 2
    assert again.summary()["versions"]["2"]["roles"] == ["shadow"]


def test_memory_is_bounded(tmp_path: Path) -> None:
    settings = MonitorSettings(window_n=10, max_pending=50, max_labelled=100, pending_ttl_s=1e9)
    t = AccuracyTracker(tmp_path / "m.sqlite", settings)
    t.register("1", "classifier", [0, 1])
    for batch in range(20):
        now = 1000.0 + batch * 11
        t.record(records("1", [1] * 30, None, start=batch * 30, ts=now), now=now)
    assert t.store.pending_count() <= 60  # pruned to the cap every 10 s (ties may keep a few more)
    t.feedback([(f"r{i}", 1) for i in range(540, 600)], now=2000.0)
    assert t.summary(now=2000.0)["versions"]["1"]["last_n"]["n"] == 10


def insert_labelled(db: Path, rows: list[tuple]) -> None:  # type: ignore[type-arg]
    """Rows written straight into SQLite, as an older (or broken) monitor may have left them."""
    import sqlite3

    con = sqlite3.connect(db)
    with con:
        con.executemany("INSERT INTO labelled VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.close()


def test_bad_labels_are_set_aside_and_counted_never_scored(tmp_path: Path) -> None:
    db = tmp_path / "m.sqlite"
    t = AccuracyTracker(db)
    t.register("1", "classifier", [0, 1])
    t.register("r", "regressor", None)
    t.record(records("1", [0, 1, 1, 0, 1], None) + records("r", [0.5, 1.5], None, start=10))
    # Straight to the tracker (the server refuses these with a 400): none may poison the scores.
    t.feedback([("r0", float("nan")), ("r1", 2), ("r2", "cat"), ("r3", 0.7), ("r4", "1")])
    t.feedback([("r10", "abc"), ("r11", float("inf"))])
    summary = t.summary()
    assert summary["versions"]["1"]["last_n"] == {
        "n": 1,
        "accuracy": 1.0,
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "roc_auc": None,
    }
    assert summary["versions"]["r"]["last_n"]["n"] == 0
    assert summary["feedback"]["invalid_labels"] == 6
    t.store.close()
    # Bad rows already in SQLite (written before validation existed, or damaged): skipped
    # and counted on reload; /monitor keeps answering.
    insert_labelled(
        db,
        [
            ("x1", "1", "live", "1", None, "NaN", 1.0, time.time()),
            ("x2", "1", "live", "1", None, '"cat"', 1.0, time.time()),
            ("x3", "1", "live", "{broken", None, "1", 1.0, time.time()),
            ("x4", "r", "live", "0.5", None, '"abc"', 1.0, time.time()),
        ],
    )
    again = AccuracyTracker(db)
    after = again.summary()
    assert after["versions"]["1"]["last_n"]["n"] == 1
    assert after["versions"]["1"]["last_s"]["n"] == 1
    assert after["versions"]["r"]["last_n"]["n"] == 0
    assert after["feedback"]["invalid_labels"] == 10
    assert again.summary()["feedback"]["invalid_labels"] == 10  # counted once, not per read


def test_labels_become_the_models_own_classes(tmp_path: Path) -> None:
    t = AccuracyTracker(tmp_path / "m.sqlite")
    t.register("1", "classifier", [0, 1])
    t.record(records("1", [1, 1, 0], None))
    t.feedback([("r0", "1"), ("r1", 1.0), ("r2", 0)])
    last = t.summary()["versions"]["1"]["last_n"]
    assert last["n"] == 3 and last["accuracy"] == 1.0


def test_threads_hammering_the_tracker_never_collide(tmp_path: Path) -> None:
    """Serve may run a replica's calls in a thread pool; the tracker must serialise them."""
    from concurrent.futures import ThreadPoolExecutor

    t = AccuracyTracker(tmp_path / "m.sqlite", MonitorSettings(window_n=50))
    t.register("1", "classifier", [0, 1])

    def work(k: int) -> None:
        for i in range(40):
            rid = f"t{k}-{i}"
            t.record([PredictionRecord(rid, "1", "live", i % 2, [0.5, 0.5], time.time())])
            t.feedback([(rid, i % 2)])
            t.add_bins("1", [[1, 2], [3, 4]])
            if i % 10 == 0:
                t.register("1", "classifier", [0, 1])
                t.summary()

    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(work, k) for k in range(8)]:
            future.result()  # re-raises "cannot start a transaction within a transaction"
    summary = t.summary()["versions"]["1"]
    assert summary["labelled_total"] == 320 and summary["last_n"]["accuracy"] == 1.0


def test_restart_reloads_every_versions_window_and_counts_every_label(tmp_path: Path) -> None:
    """A version with old labels comes back after a restart even when another has many newer
    ones, and the time window and totals are not capped by any in-memory cache."""
    db = tmp_path / "m.sqlite"
    t = AccuracyTracker(db, MonitorSettings(window_n=100))
    t.register("old", "classifier", [0, 1])
    t.register("busy", "classifier", [0, 1])
    t.record(records("old", [1] * 5, None, ts=100.0), now=100.0)
    t.feedback([(f"r{i}", 1) for i in range(5)], now=101.0)
    busy = 50_500  # more than the 50,000 pairs an in-memory cache once held: ~170 labels/s
    t.record(records("busy", [1] * busy, None, start=100))
    t.feedback([(f"r{i}", 1) for i in range(100, 100 + busy)])
    assert t.summary()["versions"]["busy"]["last_s"]["n"] == busy
    t.store.close()
    again = AccuracyTracker(db, MonitorSettings(window_n=100))
    summary = again.summary()["versions"]
    assert summary["old"]["last_n"]["n"] == 5 and summary["old"]["last_n"]["accuracy"] == 1.0
    assert summary["busy"]["last_n"]["n"] == 100
    assert summary["busy"]["last_s"]["n"] == busy
    assert summary["busy"]["labelled_total"] == busy
    assert summary["old"]["labelled_total"] == 5


def test_drift_survives_a_restart(tmp_path: Path) -> None:
    from serving.drift import FeatureBins
    from tests.serving.test_drift import REFERENCE, TRAIN, rows

    db = tmp_path / "m.sqlite"
    t = AccuracyTracker(db)
    t.register("1", "classifier", [0, 1], REFERENCE)
    bins = FeatureBins(REFERENCE)
    bins.add(rows(TRAIN[:500]))
    t.add_bins("1", bins.take() or [])
    before = t.summary()["versions"]["1"]
    assert before["drift"] is not None and before["drift"]["rows"] == 500
    t.store.close()
    again = AccuracyTracker(db)
    again.register("1", "classifier", [0, 1])  # a replica registering again without a reference
    assert again.summary()["versions"]["1"]["drift"] == before["drift"]


def test_drift_without_a_reference_says_why(tmp_path: Path) -> None:
    t = AccuracyTracker(tmp_path / "m.sqlite")
    t.register("1", "classifier", [0, 1], None)
    t.add_bins("1", [[1, 2]])
    version = t.summary()["versions"]["1"]
    assert version["drift"] is None
    assert version["drift_status"] == "not available: no reference sample"


def test_a_file_from_an_older_monitor_still_opens(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "m.sqlite"
    con = sqlite3.connect(db)
    con.executescript(
        "CREATE TABLE versions (version TEXT PRIMARY KEY, task TEXT NOT NULL, classes TEXT);"
        "INSERT INTO versions VALUES ('1', 'classifier', '[0, 1]');"
        "CREATE TABLE labelled (request_id TEXT NOT NULL, version TEXT NOT NULL, role TEXT NOT NULL,"
        " prediction TEXT NOT NULL, proba TEXT, label TEXT NOT NULL, ts REAL NOT NULL,"
        " label_ts REAL NOT NULL, PRIMARY KEY (request_id, version)) WITHOUT ROWID;"
        "INSERT INTO labelled VALUES ('a', '1', 'live', '1', NULL, '1', 1.0, 2.0);"
    )
    con.close()
    summary = AccuracyTracker(db).summary()["versions"]["1"]
    assert summary["labelled_total"] == 1 and summary["last_n"]["n"] == 1


def test_labels_waiting_for_their_prediction_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "m.sqlite"
    settings = MonitorSettings(orphan_grace_s=60, max_orphans=2)
    t = AccuracyTracker(db, settings)
    t.register("1", "classifier", [0, 1])
    assert t.feedback([("early", 1), ("late", 0)], now=100.0)["waiting"] == 2
    t.store.close()
    again = AccuracyTracker(db, settings)
    assert again.summary(now=101.0)["feedback"]["waiting"] == 2
    again.record([PredictionRecord("early", "1", "live", 1, None, 102.0)], now=102.0)
    summary = again.summary(now=103.0)
    assert summary["versions"]["1"]["labelled_total"] == 1
    assert summary["feedback"]["waiting"] == 1
    # Past the cap, the oldest waiting label goes, counted as unknown (never silently).
    again.feedback([("a", 1), ("b", 1)], now=104.0)
    counters = again.summary(now=105.0)["feedback"]
    assert counters["waiting"] == 2 and counters["unknown"] == 1
    # Past the grace, reading the summary alone counts them too.
    assert again.summary(now=300.0)["feedback"]["unknown"] == 3


def test_a_shadows_prediction_flushed_after_the_label_is_still_scored(tmp_path: Path) -> None:
    # The shadow answers after the live version, and its replica may flush a moment later:
    # a label that came in between must be scored for both, and once each.
    db = tmp_path / "m.sqlite"
    t = AccuracyTracker(db, MonitorSettings(orphan_grace_s=30))
    t.register("1", "classifier", [0, 1])
    t.register("2", "classifier", [0, 1])
    t.record(records("1", [1, 0], None, ts=100.0), now=100.0)
    result = t.feedback([("r0", 1), ("r1", 1)], now=100.5)
    assert result == {"received": 2, "joined": 2, "duplicate": 0, "waiting": 0}
    t.store.close()
    t = AccuracyTracker(db, MonitorSettings(orphan_grace_s=30))  # kept across a restart too
    t.record(records("2", [1, 1], None, role="shadow", ts=100.2), now=101.0)
    t.record(records("1", [1, 0], None, ts=100.0), now=101.5)  # a live block sent again
    summary = t.summary(now=102.0)
    assert summary["versions"]["1"]["labelled_total"] == 2
    assert summary["versions"]["1"]["last_n"]["accuracy"] == 0.5
    assert summary["versions"]["2"]["labelled_total"] == 2
    assert summary["versions"]["2"]["roles"] == ["shadow"]
    assert summary["versions"]["2"]["last_n"]["accuracy"] == 1.0
    assert summary["feedback"]["waiting"] == 0 and summary["feedback"]["joined"] == 4
    # Past the grace the kept labels go; they had met a prediction, so none is unknown.
    later = t.summary(now=200.0)["feedback"]
    assert later.get("unknown", 0) == 0
    t.record(records("2", [0], None, role="shadow", ts=200.0), now=200.0)
    assert t.summary(now=201.0)["versions"]["2"]["labelled_total"] == 2
