"""A version's live feature-bin counts over a time window, summed as they arrive.

Replicas send a chunk of counts every flush (ten a second from two replicas), so a 300 s
window holds about 3,000 of them. Summing them all on every summary cost the monitor 30 ms;
a running sum, less each chunk as it leaves the window, costs one array addition a chunk.
"""

from __future__ import annotations

import logging
from collections import deque

import numpy as np

log = logging.getLogger("ray.serve")


class BinWindow:
    """Chunks of (rows of features x buckets) counts within `seconds`, and their sum."""

    def __init__(self, seconds: float, max_chunks: int = 10_000) -> None:
        self.seconds = seconds
        self.max_chunks = max_chunks
        self._chunks: deque[tuple[float, np.ndarray]] = deque()
        self._total: np.ndarray | None = None

    def add(self, ts: float, counts: list[list[int]]) -> bool:
        """Add a replica's chunk; False (nothing kept) when it is not a table of counts."""
        try:
            chunk = np.asarray(counts, dtype=np.int64)
        except (TypeError, ValueError):
            return False
        if chunk.ndim != 2:
            return False
        if self._total is not None and self._total.shape != chunk.shape:
            # A replica binning with another reference: the newest shape wins, said once.
            log.warning("monitor: live bins changed shape %s -> %s; drift window restarted",
                        self._total.shape, chunk.shape)  # fmt: skip
            self._chunks.clear()
            self._total = None
        self._chunks.append((ts, chunk))
        self._total = chunk.copy() if self._total is None else self._total + chunk
        if len(self._chunks) > self.max_chunks:
            self._drop_oldest()
        self.expire(ts)
        return True

    def expire(self, now: float) -> None:
        while self._chunks and now - self._chunks[0][0] > self.seconds:
            self._drop_oldest()

    def total(self, now: float) -> np.ndarray | None:
        """The sum of the chunks within the window at `now`, or None when there are none."""
        self.expire(now)
        return self._total if self._chunks else None

    def _drop_oldest(self) -> None:
        _, chunk = self._chunks.popleft()
        if self._chunks:
            assert self._total is not None
            self._total -= chunk
        else:
            self._total = None
