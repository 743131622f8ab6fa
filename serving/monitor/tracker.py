"""Join predictions with late ground-truth labels and score each version over sliding windows.

Two windows per version: the last N labelled predictions, and those labelled in the last T
seconds. Memory is bounded (deques, a capped orphan map); the truth is in SQLite.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from serving.drift import psi
from serving.monitor.scores import classifier_scores, regressor_scores
from serving.monitor.store import Labelled, MonitorStore, PredictionRecord


@dataclass(frozen=True)
class MonitorSettings:
    """Window sizes and retention; defaults suit a few hundred requests per second."""

    window_n: int = 1000
    window_s: float = 300.0
    pending_ttl_s: float = 3600.0
    max_pending: int = 200_000
    max_labelled: int = 200_000
    orphan_grace_s: float = 30.0
    max_orphans: int = 10_000
    drift_threshold: float = 0.2  # PSI above this raises a warning (0.1-0.25 is the usual band)


class AccuracyTracker:
    """The monitor's state; the Serve deployment wraps it, tests use it directly."""

    def __init__(self, db_path: Path, settings: MonitorSettings | None = None) -> None:
        self.settings = settings or MonitorSettings()
        self.store = MonitorStore(db_path)
        self._cap = max(self.settings.window_n, 50_000)
        self._windows: dict[str, deque[Labelled]] = {}
        for item in self.store.recent_labelled(self._cap):
            self._window(item.version).append(item)
        self._versions = self.store.versions()
        # Labels that arrived before their prediction was flushed here: joined when it arrives.
        self._orphans: OrderedDict[str, tuple[Any, float]] = OrderedDict()
        # Live feature histograms per version over the last window_s: (time, counts) chunks.
        self._bins: dict[str, deque[tuple[float, list[list[int]]]]] = {}
        self._references: dict[str, dict[str, Any]] = {}
        self._last_prune = 0.0

    def _window(self, version: str) -> deque[Labelled]:
        if version not in self._windows:
            self._windows[version] = deque(maxlen=self._cap)
        return self._windows[version]

    def register(
        self,
        version: str,
        task: str,
        classes: list[Any] | None,
        reference: dict[str, Any] | None = None,
    ) -> None:
        self._versions[version] = (task, classes)
        if reference:
            self._references[version] = reference
        self.store.set_version(version, task, classes)

    def add_bins(self, version: str, counts: list[list[int]], now: float | None = None) -> None:
        """Live feature-bin counts from a replica; kept for the time window only."""
        now = time.time() if now is None else now
        chunks = self._bins.setdefault(version, deque(maxlen=10_000))
        chunks.append((now, counts))
        while chunks and now - chunks[0][0] > self.settings.window_s:
            chunks.popleft()

    def drift(self, version: str, now: float) -> dict[str, Any] | None:
        """PSI per feature over the time window, the worst one, and whether it crosses the threshold."""
        reference = self._references.get(version)
        chunks = [c for t, c in self._bins.get(version, ()) if now - t <= self.settings.window_s]
        if not reference or not chunks:
            return None
        total = np.sum(np.asarray(chunks, dtype=np.int64), axis=0)
        per_feature: dict[str, float] = {}
        for j, feature in enumerate(reference["features"]):
            value = psi(feature["fractions"], total[j].tolist())
            if value is not None:
                per_feature[str(feature["name"])] = value
        if not per_feature:
            return None
        worst = max(per_feature, key=lambda k: per_feature[k])
        over = sorted(k for k, v in per_feature.items() if v > self.settings.drift_threshold)
        return {
            "rows": int(total[0].sum()),
            "max_psi": per_feature[worst],
            "worst_feature": worst,
            "threshold": self.settings.drift_threshold,
            "warning": bool(over),
            "drifting": over,
            "psi": per_feature,
        }

    def record(self, records: list[PredictionRecord], now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.store.add_predictions(records)
        waiting = {r.request_id for r in records if r.request_id in self._orphans}
        for request_id in waiting:
            label, _ = self._orphans.pop(request_id)
            self._accept(self.store.join(request_id, label, now))
        self._maybe_prune(now)

    def feedback(self, items: list[tuple[str, Any]], now: float | None = None) -> dict[str, int]:
        """Join each (request_id, label); unknown ids wait a short grace period, then count as unknown."""
        now = time.time() if now is None else now
        joined = duplicate = held = 0
        for request_id, label in items:
            found = self.store.join(request_id, label, now)
            if found:
                joined += 1
                self._accept(found)
            elif self.store.was_labelled(request_id):
                duplicate += 1
            else:
                held += 1
                self._orphans[request_id] = (label, now)
                self._orphans.move_to_end(request_id)
        unknown = self._expire_orphans(now)
        self.store.bump(
            {"feedback": len(items), "joined": joined, "duplicate": duplicate, "unknown": unknown}
        )
        return {"received": len(items), "joined": joined, "duplicate": duplicate, "waiting": held}

    def _accept(self, items: list[Labelled]) -> None:
        for item in items:
            self._window(item.version).append(item)

    def _expire_orphans(self, now: float) -> int:
        expired = 0
        while self._orphans:
            _, (_, ts) = next(iter(self._orphans.items()))
            if (
                now - ts <= self.settings.orphan_grace_s
                and len(self._orphans) <= self.settings.max_orphans
            ):
                break
            self._orphans.popitem(last=False)
            expired += 1
        return expired

    def _maybe_prune(self, now: float) -> None:
        if now - self._last_prune < 10:
            return
        self._last_prune = now
        expired = self.store.prune(
            pending_before=now - self.settings.pending_ttl_s,
            max_pending=self.settings.max_pending,
            max_labelled=self.settings.max_labelled,
        )
        self.store.bump({"expired": expired, "unknown": self._expire_orphans(now)})

    def summary(self, now: float | None = None) -> dict[str, Any]:
        """Per version: counts and scores over the last-N and last-T windows."""
        now = time.time() if now is None else now
        self._expire_orphans(now)
        versions: dict[str, Any] = {}
        for version in sorted(set(self._windows) | set(self._versions)):
            task, classes = self._versions.get(version, ("classifier", None))
            window = list(self._windows.get(version, ()))
            last_n = window[-self.settings.window_n :]
            recent = [x for x in window if now - x.label_ts <= self.settings.window_s]
            versions[version] = {
                "task": task,
                "labelled_total": len(window),
                "roles": sorted({x.role for x in last_n}),
                "last_n": {"n": len(last_n), **_scores(task, classes, last_n)},
                "last_s": {
                    "n": len(recent),
                    "seconds": self.settings.window_s,
                    **_scores(task, classes, recent),
                },
                "drift": self.drift(version, now),
            }
        counters = self.store.counters()
        counters["waiting"] = len(self._orphans)
        counters["pending_predictions"] = self.store.pending_count()
        return {"versions": versions, "feedback": counters, "window_n": self.settings.window_n}


def _scores(task: str, classes: list[Any] | None, items: list[Labelled]) -> dict[str, float | None]:
    if task == "regressor":
        return regressor_scores(
            [float(x.label) for x in items], [float(x.prediction) for x in items]
        )
    labels = [_coerce(x.label, classes) for x in items]
    probas = [x.proba for x in items if x.proba is not None]
    has_proba = bool(items) and len(probas) == len(items)
    predictions = [x.prediction for x in items]
    return classifier_scores(labels, predictions, probas if has_proba else None, classes)


def _coerce(label: Any, classes: list[Any] | None) -> Any:
    """Labels arrive as JSON; match the classes' type so '1' and 1 compare equal."""
    if not classes or type(label) is type(classes[0]):
        return label
    try:
        return type(classes[0])(label)
    except (TypeError, ValueError):
        return label
