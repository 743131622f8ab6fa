"""From node windows to per-version figures: rates, errors, percentiles, balance, queues, health."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from cluster.telemetry.quantile import histogram_quantile
from cluster.telemetry.window import NodeWindow, counter_deltas, gauges


@dataclass
class VersionStats:
    """One version of one app over the window."""

    version: str
    requests_per_s: float = 0.0
    error_rate: float = 0.0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    requests: float = 0.0
    # The replicas' own view: processing time and exceptions, per version even when the
    # requests reached it through another version (a canary, a shadow).
    processing_p50_ms: float | None = None
    processing_p95_ms: float | None = None
    processing_p99_ms: float | None = None
    replica_requests_total: float = 0.0
    replica_error_rate: float = 0.0
    replica_requests: dict[str, float] = field(default_factory=dict)
    imbalance_max_mean: float | None = None
    imbalance_cv: float | None = None
    queued: float = 0.0
    ongoing: float = 0.0
    healthy_replicas: int = 0
    replicas: int = 0
    restarts: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _labels(key: tuple[str, tuple[tuple[str, str], ...]]) -> dict[str, str]:
    return dict(key[1])


def version_stats(
    app: str, windows: dict[str, NodeWindow], window_s: float, now: float
) -> dict[str, VersionStats]:
    """Figures per version of `app`, summed over every node that answered in the window.

    Serve applications are named APP--VERSION; the HTTP latency histogram (measured at the
    proxies) gives the percentiles, the replicas' request counters give the balance.
    """
    prefix = f"{app}--"

    def mine(labels: dict[str, str]) -> bool:
        return labels.get("application", "").startswith(prefix) and not labels[
            "application"
        ].endswith("--monitor")

    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    proc_buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    requests: dict[str, float] = defaultdict(float)
    errors: dict[str, float] = defaultdict(float)
    replica_errors: dict[str, float] = defaultdict(float)
    per_replica: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    stats: dict[str, VersionStats] = {}
    span_s: dict[str, float] = defaultdict(float)
    for window in windows.values():
        span = window.span(window_s, now)
        if span is None:
            continue
        old, new = span
        dt = new.at - old.at
        for key, delta in counter_deltas(
            old, new, "ray_serve_http_request_latency_ms_bucket", mine
        ).items():
            labels = _labels(key)
            buckets[_version(labels, prefix)][float(labels["le"])] += delta
        for key, delta in counter_deltas(
            old, new, "ray_serve_deployment_processing_latency_ms_bucket", mine
        ).items():
            labels = _labels(key)
            proc_buckets[_version(labels, prefix)][float(labels["le"])] += delta
        for key, delta in counter_deltas(
            old, new, "ray_serve_num_http_requests_total", mine
        ).items():
            labels = _labels(key)
            version = _version(labels, prefix)
            requests[version] += delta
            span_s[version] = max(span_s[version], dt)
            if labels.get("status_code", "200").startswith("5"):
                errors[version] += delta
        for key, delta in counter_deltas(
            old, new, "ray_serve_deployment_request_counter_total", mine
        ).items():
            labels = _labels(key)
            version = _version(labels, prefix)
            per_replica[version][labels.get("replica", "?")] += delta
            span_s[version] = max(span_s[version], dt)
        for key, delta in counter_deltas(
            old, new, "ray_serve_deployment_error_counter_total", mine
        ).items():
            replica_errors[_version(_labels(key), prefix)] += delta
        for key, value in gauges(new, "ray_serve_deployment_queued_queries", mine).items():
            _get(stats, _version(_labels(key), prefix)).queued += value
        for key, value in gauges(new, "ray_serve_replica_processing_queries", mine).items():
            _get(stats, _version(_labels(key), prefix)).ongoing += value
        for key, value in gauges(new, "ray_serve_deployment_replica_healthy", mine).items():
            s = _get(stats, _version(_labels(key), prefix))
            s.replicas += 1
            s.healthy_replicas += int(value >= 1)
        for key, delta in counter_deltas(
            old, new, "ray_serve_deployment_replica_starts_total", mine
        ).items():
            _get(stats, _version(_labels(key), prefix)).restarts += delta
    for version in set(requests) | set(per_replica) | set(buckets) | set(proc_buckets) | set(stats):
        s = _get(stats, version)
        dt = span_s.get(version) or window_s
        total = requests.get(version) or sum(per_replica.get(version, {}).values())
        s.requests = total
        s.requests_per_s = total / dt if dt > 0 else 0.0
        s.error_rate = (
            errors.get(version, 0.0) / requests[version] if requests.get(version) else 0.0
        )
        # Proxy-side latency when this version served HTTP in the window; otherwise (a canary
        # or shadow reached through the live version) the replicas' processing latency.
        http = buckets.get(version) or {}
        hist = http if max(http.values(), default=0.0) > 0 else proc_buckets.get(version) or {}
        cumulative = sorted(hist.items())
        processing = sorted((proc_buckets.get(version) or {}).items())
        for q, attr in ((0.5, "p50_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")):
            setattr(s, attr, histogram_quantile(q, cumulative))
            setattr(s, f"processing_{attr}", histogram_quantile(q, processing))
        s.replica_requests = dict(per_replica.get(version, {}))
        s.replica_requests_total = sum(s.replica_requests.values())
        if s.replica_requests_total:
            s.replica_error_rate = replica_errors.get(version, 0.0) / s.replica_requests_total
        counts = list(s.replica_requests.values())
        if counts and sum(counts) > 0:
            mean = sum(counts) / len(counts)
            s.imbalance_max_mean = max(counts) / mean
            s.imbalance_cv = math.sqrt(sum((c - mean) ** 2 for c in counts) / len(counts)) / mean
    return stats


def _get(stats: dict[str, VersionStats], version: str) -> VersionStats:
    if version not in stats:
        stats[version] = VersionStats(version)
    return stats[version]


def _version(labels: dict[str, str], prefix: str) -> str:
    return labels["application"][len(prefix) :]
