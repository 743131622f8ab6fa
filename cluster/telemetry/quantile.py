"""Percentiles from cumulative histogram buckets, the way Prometheus' histogram_quantile does."""

from __future__ import annotations

import math


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """`buckets` are (upper bound, cumulative count) pairs, +Inf last; None when empty.

    Linear interpolation inside the bucket that holds the q-th observation; an answer in
    the +Inf bucket is reported as the largest finite bound.
    """
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return prev_bound
            in_bucket = count - prev_count
            if in_bucket <= 0:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / in_bucket
        prev_bound, prev_count = bound, count
    return prev_bound
