"""Feature drift: live rows binned with the model's reference histogram edges, and the
population stability index (PSI) between the two distributions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

EPSILON = 1e-4  # keeps empty bins from dividing by zero, as PSI is usually computed


class FeatureBins:
    """Counts of live rows per (feature, bin); one vectorised numpy pass per batch."""

    def __init__(self, reference: dict[str, Any] | None) -> None:
        features = (reference or {}).get("features") or []
        self.names = [str(f["name"]) for f in features]
        self.enabled = bool(features)
        widest = max((len(f["edges"]) for f in features), default=0)
        self.bins = widest + 1
        # Pad every feature's inner edges with +inf, which no value reaches.
        self._edges = np.full((len(features), max(widest, 1)), np.inf)
        for j, f in enumerate(features):
            self._edges[j, : len(f["edges"])] = f["edges"]
        self._offsets = np.arange(len(features)) * self.bins
        self.counts = np.zeros((len(features), self.bins), dtype=np.int64)

    def add(self, rows: np.ndarray) -> None:
        if not self.enabled or rows.shape[1] != len(self.names):
            return
        # Bin index = number of inner edges <= value (np.searchsorted(..., side="right")).
        index = (rows[:, :, None] >= self._edges[None, :, :]).sum(axis=2) + self._offsets
        self.counts += np.bincount(index.ravel(), minlength=self.counts.size).reshape(
            self.counts.shape
        )

    def give_back(self, counts: list[list[int]] | None) -> None:
        """Counts taken for a send that failed: they go out with the next one."""
        if counts is not None:
            self.counts += np.asarray(counts, dtype=np.int64)

    def take(self) -> list[list[int]] | None:
        """The counts so far (and start again), or None when nothing was seen."""
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
