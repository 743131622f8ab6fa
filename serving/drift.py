"""Feature drift: live rows binned with the model's reference buckets, and the population
stability index (PSI) between the two distributions.

A numeric feature's buckets are the reference's quantile bins, then "missing"; a categorical
feature's are its training categories, then "unseen", then "missing". So a shift in a
category's frequency, new categories, and a change in how often a value is missing all move
PSI, and the missing rate and unseen count can be read from the same counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from serving.instances import Batch

EPSILON = 1e-4  # keeps empty bins from dividing by zero, as PSI is usually computed
CATEGORY = "category"
# Rows kept uncounted at most. Counted together they share numpy's fixed cost per call;
# many more, and the temporary arrays outgrow the cache (measured fastest near 256).
MAX_PENDING_ROWS = 256


def buckets(feature: dict[str, Any]) -> int:
    """How many buckets a reference feature has in the live counts (missing included)."""
    if feature.get("kind") == CATEGORY:
        return len(feature["categories"]) + 2
    return len(feature["edges"]) + 2


def missing_bucket(feature: dict[str, Any]) -> int:
    return buckets(feature) - 1


class FeatureBins:
    """Counts of live rows per (feature, bucket).

    `add` keeps a reference to the batch and counts the batches it holds once they reach
    MAX_PENDING_ROWS rows; `take` counts the rest (one vectorised comparison per inner edge
    for the numeric features, a dictionary lookup per value for the categorical ones). At
    one request at a time, numpy's fixed cost per call was most of the work.
    """

    def __init__(self, reference: dict[str, Any] | None) -> None:
        features = (reference or {}).get("features") or []
        self.names = [str(f["name"]) for f in features]
        self.enabled = bool(features)
        numeric = [j for j, f in enumerate(features) if f.get("kind") != CATEGORY]
        self._numeric = np.asarray(numeric, dtype=np.int64)
        self._categorical = [
            (j, {c: k for k, c in enumerate(f["categories"])}, len(f["categories"]))
            for j, f in enumerate(features)
            if f.get("kind") == CATEGORY
        ]
        widest = max((len(features[j]["edges"]) for j in numeric), default=0)
        # Inner edges by position, one row per edge: +inf pads a feature with fewer edges,
        # and no value reaches it.
        self._edges = np.full((widest, len(numeric)), np.inf)
        self._missing = np.zeros(len(numeric), dtype=np.int64)
        for k, j in enumerate(numeric):
            edges = features[j]["edges"]
            self._edges[: len(edges), k] = edges
            self._missing[k] = len(edges) + 1
        # Parsed rows are float32. Each edge rounded up to the nearest float32 gives exactly
        # the same comparisons (x >= e for a float32 x iff x >= the least float32 >= e),
        # without converting every value to float64 once per edge.
        edges32 = self._edges.astype(np.float32)
        below = edges32.astype(np.float64) < self._edges
        self._edges32 = np.where(below, np.nextafter(edges32, np.float32(np.inf)), edges32)
        self._index_type = np.uint8 if widest < 255 else np.int64
        self.width = max((buckets(f) for f in features), default=0)
        self._offsets = self._numeric * self.width
        self.counts = np.zeros((len(features), self.width), dtype=np.int64)
        self._pending: list[Batch] = []
        self._pending_rows = 0

    def add(self, batch: Batch) -> None:
        """Keep the batch for the next count (its arrays are never changed after parsing)."""
        if self.enabled and batch.numbers.shape[1] == len(self._numeric):
            self._pending.append(batch)
            self._pending_rows += len(batch)
            if self._pending_rows >= MAX_PENDING_ROWS:
                self._count_pending()

    def _count_pending(self) -> None:
        if not self._pending:
            return
        batches, self._pending, self._pending_rows = self._pending, [], 0
        if len(self._numeric):
            numbers = np.concatenate([b.numbers for b in batches])
            edges = self._edges32 if numbers.dtype == np.float32 else self._edges
            # Bucket = number of inner edges <= value (np.searchsorted(..., side="right"));
            # a missing value (NaN) goes to the feature's "missing" bucket.
            small = np.zeros(numbers.shape, dtype=self._index_type)
            for edge in edges:
                small += numbers >= edge
            index = small.astype(np.int64)
            missing = np.isnan(numbers)
            if missing.any():
                index = np.where(missing, self._missing[None, :], index)
            self.counts += np.bincount(
                (index + self._offsets).ravel(), minlength=self.counts.size
            ).reshape(self.counts.shape)
        for k, (j, codes, n) in enumerate(self._categorical):
            row = self.counts[j]
            for batch in batches:
                for value in batch.texts[:, k]:
                    row[n + 1 if value is None else codes.get(value, n)] += 1

    def give_back(self, counts: list[list[int]] | None) -> None:
        """Counts taken for a send that failed: they go out with the next one."""
        if counts is not None:
            self.counts += np.asarray(counts, dtype=np.int64)

    def take(self) -> list[list[int]] | None:
        """The counts so far (and start again), or None when nothing was seen."""
        self._count_pending()
        if not self.enabled or not self.counts.any():
            return None
        out = self.counts.tolist()
        self.counts[:] = 0
        return out


def psi(expected: Sequence[float], actual_counts: Sequence[int]) -> float | None:
    """Population stability index of live counts against reference fractions."""
    total = sum(actual_counts[: len(expected)])
    if total <= 0:
        return None
    value = 0.0
    for e, count in zip(expected, actual_counts, strict=False):
        a = max(count / total, EPSILON)
        e = max(e, EPSILON)
        value += (a - e) * math.log(a / e)
    return value
