"""Join predictions with late ground-truth labels and score each version over sliding windows.

Two windows per version: the last N labelled predictions (a deque per version, reloaded per
version on restart) and those labelled in the last T seconds (read from SQLite by label time,
so a high label rate is never undercounted). Memory is bounded (deques of N, the ids of the
capped waiting labels); the truth, waiting labels, drift references and drift bins included,
is in SQLite.

Every public method holds one lock: Serve may call a replica from a thread pool, and the
store's single SQLite connection cannot run two transactions at once.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving.drift import CATEGORY, buckets, missing_bucket, psi
from serving.labels import LabelChecker, LabelError
from serving.monitor.bin_window import BinWindow
from serving.monitor.records import PredictionBlock, PredictionRecord, from_records
from serving.monitor.scores import classifier_scores, regressor_scores
from serving.monitor.store import BadRow, Labelled, MonitorStore, VersionInfo

log = logging.getLogger("ray.serve")
_UNREGISTERED = VersionInfo("classifier", None, None)


@dataclass(frozen=True)
class MonitorSettings:
    """Window sizes and retention; defaults suit a few hundred requests per second."""

    window_n: int = 1000
    window_s: float = 300.0
    pending_ttl_s: float = 3600.0
    max_pending: int = 200_000
    max_labelled: int = 200_000  # also bounds the time window: older pairs are pruned
    orphan_grace_s: float = 30.0
    max_orphans: int = 100_000  # labels kept for predictions still to come (on disk)
    max_inputs: int = 200_000  # logged request inputs (log_features), oldest dropped first
    drift_threshold: float = 0.2  # PSI above this raises a warning (0.1-0.25 is the usual band)
    # PSI from a handful of rows says nothing (15 copies of one row gave 7 to 8 on every
    # feature): below this many rows in the window, no drift figure is given at all.
    drift_min_rows: int = 200


class AccuracyTracker:
    """The monitor's state; the Serve deployment wraps it, tests use it directly."""

    def __init__(self, db_path: Path, settings: MonitorSettings | None = None) -> None:
        self.settings = settings or MonitorSettings()
        self.store = MonitorStore(db_path)
        self._lock = threading.RLock()
        self._versions: dict[str, VersionInfo] = self.store.versions()
        self._checkers: dict[str, LabelChecker] = {}
        self._windows: dict[str, deque[Labelled]] = {}
        for version in self.store.labelled_versions():
            self._windows[version] = deque(self._reload(version), maxlen=self.settings.window_n)
        # Labels are kept in SQLite (a restart keeps them) for the grace period, for
        # predictions still to come: all of the request's when none had come (_waiting), a
        # shadow's when the live one's had (_open: the shadow answers after the live version,
        # and its block may be flushed later). Their ids, mirrored here, make the check on
        # every prediction block a set lookup.
        self._waiting, self._open = self.store.waiting_ids()
        # Live feature histograms per version over the last window_s, summed as they come.
        self._bins: dict[str, BinWindow] = {}
        for version, ts, counts in self.store.bins_since(time.time() - self.settings.window_s):
            self._bin_window(version).add(ts, counts)
        self._last_prune = 0.0

    def _reload(self, version: str) -> list[Labelled]:
        """The version's last N scorable pairs; unscorable rows are moved aside and counted."""
        good: list[Labelled] = []
        for _ in range(10):  # each pass removes the bad rows it found; a few passes suffice
            good, bad = self.store.recent_labelled(version, self.settings.window_n)
            good, invalid = self._checked(version, good)
            if not bad and not invalid:
                break
            self.store.reject(bad + invalid)
            log.warning("monitor: set aside %d unscorable labelled rows", len(bad) + len(invalid))
        return good

    def _window(self, version: str) -> deque[Labelled]:
        if version not in self._windows:
            self._windows[version] = deque(maxlen=self.settings.window_n)
        return self._windows[version]

    def _bin_window(self, version: str) -> BinWindow:
        if version not in self._bins:
            self._bins[version] = BinWindow(self.settings.window_s)
        return self._bins[version]

    def _checker(self, version: str) -> LabelChecker:
        if version not in self._checkers:
            info = self._versions.get(version, _UNREGISTERED)
            self._checkers[version] = LabelChecker(info.task, info.classes)
        return self._checkers[version]

    def _checked(self, version: str, items: list[Labelled]) -> tuple[list[Labelled], list[BadRow]]:
        """Items with labels as the model's own classes, and those the model cannot be scored on."""
        checker = self._checker(version)
        good: list[Labelled] = []
        bad: list[BadRow] = []
        for item in items:
            try:
                label = checker.check(item.label)
            except LabelError as exc:
                bad.append(BadRow(item.request_id, item.version, str(exc)))
                continue
            good.append(item if label == item.label else dataclasses.replace(item, label=label))
        return good, bad

    def register(
        self,
        version: str,
        task: str,
        classes: list[Any] | None,
        reference: dict[str, Any] | None = None,
    ) -> None:
        """A replica's model: task and classes for scoring, reference histograms for drift."""
        with self._lock:
            old = self._versions.get(version)
            kept = reference or (old.reference if old else None)
            self._versions[version] = VersionInfo(task, classes, kept)
            self._checkers.pop(version, None)
            self.store.set_version(version, task, classes, reference or None)

    def add_bins(self, version: str, counts: list[list[int]], now: float | None = None) -> None:
        """Live feature-bin counts from a replica; kept (here and in SQLite) for the time window."""
        now = time.time() if now is None else now
        with self._lock:
            if not self._bin_window(version).add(now, counts):
                log.warning(
                    "monitor: ignoring live bins of %s that are not a table of counts", version
                )
                return
            self.store.add_bins(version, now, counts, keep_after=now - self.settings.window_s)

    def drift(self, version: str, now: float) -> dict[str, Any] | None:
        """PSI per feature over the time window, the worst one, and whether it crosses the threshold."""
        with self._lock:
            return self._drift(version, now)[0]

    def _drift(self, version: str, now: float) -> tuple[dict[str, Any] | None, str]:
        """The drift figures, or None, and a status saying why not."""
        reference = self._versions.get(version, _UNREGISTERED).reference
        if not reference:
            return None, "not available: no reference sample"
        window = self._bins.get(version)
        total = window.total(now) if window is not None else None
        if total is None:
            return None, f"not available: no live rows in the last {self.settings.window_s:g} s"
        try:
            per_feature: dict[str, float] = {}
            missing: dict[str, dict[str, float]] = {}
            unseen: dict[str, int] = {}
            for j, feature in enumerate(reference["features"]):
                name = str(feature["name"])
                counts = total[j]
                value = psi(feature["fractions"], counts.tolist())
                if value is not None:
                    per_feature[name] = value
                seen = int(counts.sum())
                # References written before the "missing" bucket existed have one fraction less.
                if seen and len(feature["fractions"]) == buckets(feature):
                    live = float(counts[missing_bucket(feature)]) / seen
                    expected = float(feature["fractions"][-1])
                    if live or expected:
                        missing[name] = {"reference": expected, "live": live}
                if feature.get("kind") == CATEGORY and counts[len(feature["categories"])]:
                    unseen[name] = int(counts[len(feature["categories"])])
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            return None, f"not available: live bins do not match the reference ({exc})"
        if not per_feature:
            return None, "not available: no live rows binned"
        rows = int(total[0].sum())
        if rows < self.settings.drift_min_rows:
            return None, f"not enough rows ({rows} of {self.settings.drift_min_rows})"
        worst = max(per_feature, key=lambda k: per_feature[k])
        over = sorted(k for k, v in per_feature.items() if v > self.settings.drift_threshold)
        drift = {
            "rows": rows,
            "max_psi": per_feature[worst],
            "worst_feature": worst,
            "threshold": self.settings.drift_threshold,
            "warning": bool(over),
            "drifting": over,
            "psi": per_feature,
            # Share of rows missing each feature, live against the training sample (only the
            # features where either is not zero), and values of categories never trained on.
            "missing": missing,
            "unseen": unseen,
        }
        return drift, "ok"

    def record(
        self, rows: PredictionBlock | Sequence[PredictionRecord], now: float | None = None
    ) -> None:
        """Store predictions (a replica's block; tests and tools may give records) and join
        any labels that came before them."""
        now = time.time() if now is None else now
        blocks = [rows] if isinstance(rows, PredictionBlock) else from_records(rows)
        with self._lock:
            for block in blocks:
                self.store.add_block(block)
                if self._waiting or self._open:
                    ids = self._waiting.intersection(block.request_ids)
                    ids.update(self._open.intersection(block.request_ids))
                    if ids:
                        labels = self.store.waiting_labels_of(list(ids))
                        self._waiting.difference_update(ids)
                        self._open.update(ids)
                        found = self.store.join_many(labels, now, once=True)
                        self.store.bump({"joined": sum(self._accept(f) for f in found)})
            self._maybe_prune(now)

    def feedback(self, items: list[tuple[str, Any]], now: float | None = None) -> dict[str, int]:
        """Join each (request_id, label); unknown ids wait a short grace period, then count as unknown.

        A label the version cannot be scored on (not one of its classes, not a finite number)
        is set aside and counted as invalid_labels, never scored.
        """
        now = time.time() if now is None else now
        with self._lock:
            joined = duplicate = 0
            hold: list[tuple[str, Any, float]] = []
            keep: list[tuple[str, Any, float]] = []
            for (request_id, label), found in zip(
                items, self.store.join_many(items, now), strict=True
            ):
                if found:
                    joined += 1 if self._accept(found) else 0
                    keep.append((request_id, label, now))
                elif self.store.was_labelled(request_id):
                    duplicate += 1
                else:
                    hold.append((request_id, label, now))
            self.store.hold_labels(hold)
            self.store.hold_labels(keep, joined=True)
            self._waiting.update(rid for rid, _, _ in hold)
            self._open.update(rid for rid, _, _ in keep)
            held = len(hold)
            unknown = self._expire_orphans(now)
            self.store.bump(
                {
                    "feedback": len(items),
                    "joined": joined,
                    "duplicate": duplicate,
                    "unknown": unknown,
                }
            )
        return {"received": len(items), "joined": joined, "duplicate": duplicate, "waiting": held}

    def count(self, counts: dict[str, int]) -> None:
        """Add to the feedback counters (e.g. records a replica dropped): shown, never silent."""
        with self._lock:
            self.store.bump(counts)

    def _accept(self, items: list[Labelled]) -> int:
        """Window the scorable pairs, set the others aside; how many were scorable."""
        accepted = 0
        for version in {x.version for x in items}:
            good, bad = self._checked(version, [x for x in items if x.version == version])
            self.store.reject(bad)
            self._window(version).extend(good)
            accepted += len(good)
        return accepted

    def _expire_orphans(self, now: float) -> int:
        """Drop kept labels past the grace (or the cap); how many never met a prediction."""
        if not self._waiting and not self._open:
            return 0
        gone, unknown = self.store.expire_waiting(
            now - self.settings.orphan_grace_s, self.settings.max_orphans
        )
        self._waiting.difference_update(gone)
        self._open.difference_update(gone)
        return unknown

    def _maybe_prune(self, now: float) -> None:
        if now - self._last_prune < 10:
            return
        self._last_prune = now
        expired = self.store.prune(
            pending_before=now - self.settings.pending_ttl_s,
            max_pending=self.settings.max_pending,
            max_labelled=self.settings.max_labelled,
            max_inputs=self.settings.max_inputs,
        )
        self.store.bump({"expired": expired, "unknown": self._expire_orphans(now)})

    def _recent(self, version: str, now: float) -> list[Labelled]:
        """Pairs labelled in the last window_s seconds, straight from SQLite."""
        good, bad = self.store.labelled_since(version, now - self.settings.window_s)
        good, invalid = self._checked(version, good)
        self.store.reject(bad + invalid)
        return good

    def summary(self, now: float | None = None, *, time_window: bool = True) -> dict[str, Any]:
        """Per version: counts and scores over the last-N and (unless asked not to) last-T windows."""
        now = time.time() if now is None else now
        with self._lock:
            self.store.bump({"unknown": self._expire_orphans(now)})
            totals = self.store.labelled_totals()
            versions: dict[str, Any] = {}
            for version in sorted(set(self._windows) | set(self._versions) | set(totals)):
                info = self._versions.get(version, _UNREGISTERED)
                last_n = list(self._windows.get(version, ()))
                entry: dict[str, Any] = {
                    "task": info.task,
                    "labelled_total": totals.get(version, 0),
                    "roles": sorted({x.role for x in last_n}),
                    "last_n": {"n": len(last_n), **_scores(info, last_n)},
                }
                if time_window:
                    recent = self._recent(version, now)
                    entry["last_s"] = {
                        "n": len(recent),
                        "seconds": self.settings.window_s,
                        **_scores(info, recent),
                    }
                entry["drift"], entry["drift_status"] = self._drift(version, now)
                versions[version] = entry
            counters = self.store.counters()
            counters["waiting"] = len(self._waiting)
            counters["pending_predictions"] = self.store.pending_count()
        return {"versions": versions, "feedback": counters, "window_n": self.settings.window_n}


def _scores(info: VersionInfo, items: list[Labelled]) -> dict[str, Any]:
    """scikit-learn's metrics for the window; a window it cannot score says so, never raises."""
    try:
        if info.task == "regressor":
            return regressor_scores(
                [float(x.label) for x in items], [float(x.prediction) for x in items]
            )
        labels = [x.label for x in items]
        probas = [x.proba for x in items if x.proba is not None]
        has_proba = bool(items) and len(probas) == len(items)
        predictions = [x.prediction for x in items]
        return classifier_scores(labels, predictions, probas if has_proba else None, info.classes)
    except (ValueError, TypeError) as exc:
        log.warning("monitor: cannot score a window: %s", exc)
        empty = (
            regressor_scores([], [])
            if info.task == "regressor"
            else classifier_scores([], [], None, None)
        )
        return {**empty, "error": f"cannot score this window: {exc}"}
