"""Prometheus text -> plain samples, with prometheus_client's parser (never a hand-written one)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

# Only these families matter; skipping the rest keeps a 200-node scrape cheap.
WANTED = (
    "ray_serve_http_request_latency_ms",
    "ray_serve_deployment_processing_latency_ms",
    "ray_serve_num_http_requests",
    "ray_serve_deployment_request_counter",
    "ray_serve_deployment_error_counter",
    "ray_serve_deployment_queued_queries",
    "ray_serve_replica_processing_queries",
    "ray_serve_deployment_replica_healthy",
    "ray_serve_deployment_replica_starts",
    "ray_serve_num_ongoing_http_requests",
)


@dataclass(frozen=True)
class Sample:
    """One sample: metric name (with _bucket/_total suffix), its labels, its value."""

    name: str
    labels: dict[str, str]
    value: float


def parse(text: str) -> list[Sample]:
    """Samples of the families we use, from one node's /metrics page."""
    wanted_lines = "\n".join(line for line in text.splitlines() if _wanted(line))
    out: list[Sample] = []
    for family in text_string_to_metric_families(wanted_lines):
        for s in family.samples:
            out.append(Sample(s.name, dict(s.labels), float(s.value)))
    return out


def _wanted(line: str) -> bool:
    if line.startswith("#"):
        parts = line.split(maxsplit=3)
        return len(parts) > 2 and parts[2].startswith(WANTED)
    return line.startswith(WANTED)
