"""The accuracy monitor: joins late labels, equals scikit-learn, survives restarts, stays bounded."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics

from serving.monitor.store import PredictionRecord
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
