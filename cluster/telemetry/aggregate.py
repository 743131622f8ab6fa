"""From node windows to per-version figures: rates, errors, percentiles, balance, queues, health."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from cluster.serve.config import version_of
from cluster.telemetry.prom import series
from cluster.telemetry.quantile import histogram_quantile
from cluster.telemetry.window import NodeWindow


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
    # Requests in the proxies' latency histogram: Ray exports it apart from the counters, so
    # it can trail `requests` by a report interval; percentiles cover these.
    timed_requests: float = 0.0
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
    # None until Serve's replica health gauges arrive (Ray exports them a while after the
    # counters): unknown, never "0 healthy", which would tell an operator nothing runs.
    healthy_replicas: int | None = None
    replicas: int | None = None
    restarts: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# What a series counts toward. Counters first: their kinds are below _FIRST_GAUGE.
(HTTP_BUCKET, PROC_BUCKET, HTTP_REQUESTS, REPLICA_REQUESTS, REPLICA_ERRORS, STARTS,
 QUEUED, ONGOING, HEALTHY) = range(9)  # fmt: skip
_FIRST_GAUGE = QUEUED
KIND_OF_NAME = {
    "ray_serve_http_request_latency_ms_bucket": HTTP_BUCKET,
    "ray_serve_deployment_processing_latency_ms_bucket": PROC_BUCKET,
    "ray_serve_num_http_requests_total": HTTP_REQUESTS,
    "ray_serve_deployment_request_counter_total": REPLICA_REQUESTS,
    "ray_serve_deployment_error_counter_total": REPLICA_ERRORS,
    "ray_serve_deployment_replica_starts_total": STARTS,
    "ray_serve_deployment_queued_queries": QUEUED,
    "ray_serve_replica_processing_queries": ONGOING,
    "ray_serve_deployment_replica_healthy": HEALTHY,
}
# (kind, version, detail): detail is the bucket bound, "is a 5xx", or the replica.
Role = tuple[int, str, Any]
_NOT_OURS = (-1, "", None)
_roles: dict[str, dict[str, Role]] = {}  # app -> series key -> role, worked out once
ROLES_MAX = 500_000


def _role(app: str, key: str) -> Role:
    """What the series `key` counts toward for `app`; _NOT_OURS for other apps, the
    monitor, and families the figures do not use."""
    found = series(key)
    kind = KIND_OF_NAME.get(found.name)
    application = found.labels.get("application", "")
    if kind is None:
        return _NOT_OURS
    version = version_of(application, app)
    if version is None:
        return _NOT_OURS
    if kind in (HTTP_BUCKET, PROC_BUCKET):
        return kind, version, float(found.labels["le"])
    if kind == HTTP_REQUESTS:
        return kind, version, found.labels.get("status_code", "200").startswith("5")
    if kind == REPLICA_REQUESTS:
        return kind, version, found.labels.get("replica", "?")
    return kind, version, None


def version_stats(
    app: str, windows: dict[str, NodeWindow], window_s: float, now: float
) -> dict[str, VersionStats]:
    """Figures per version of `app`, summed over every node that answered in the window.

    Serve applications are named APP--VERSION; the HTTP latency histogram (measured at the
    proxies) gives the percentiles, the replicas' request counters give the balance. One pass
    over each node's newest samples: at 200 nodes this runs over 15,000 series a second.
    """
    roles = _roles.setdefault(app, {})
    if len(roles) > ROLES_MAX:
        roles.clear()
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
        before_all = old.values
        for key, value in new.values.items():
            role = roles.get(key)
            if role is None:
                role = roles[key] = _role(app, key)
            kind, version, detail = role
            if kind < 0:
                continue
            if kind < _FIRST_GAUGE:  # a counter: its increase (a reset counts from zero)
                before = before_all.get(key, 0.0)
                value = value - before if value >= before else value
            if kind == HTTP_BUCKET:
                buckets[version][detail] += value
            elif kind == PROC_BUCKET:
                proc_buckets[version][detail] += value
            elif kind == HTTP_REQUESTS:
                requests[version] += value
                span_s[version] = max(span_s[version], dt)
                if detail:
                    errors[version] += value
            elif kind == REPLICA_REQUESTS:
                per_replica[version][detail] += value
                span_s[version] = max(span_s[version], dt)
            elif kind == REPLICA_ERRORS:
                replica_errors[version] += value
            elif kind == STARTS:
                _get(stats, version).restarts += value
            elif kind == QUEUED:
                _get(stats, version).queued += value
            elif kind == ONGOING:
                _get(stats, version).ongoing += value
            else:  # HEALTHY
                one = _get(stats, version)
                one.replicas = (one.replicas or 0) + 1
                one.healthy_replicas = (one.healthy_replicas or 0) + int(value >= 1)
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
        s.timed_requests = http.get(math.inf, 0.0)
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
