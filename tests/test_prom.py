"""The node-side digest and the console's parse of it give what prometheus_client gives when it
parses the whole page, summed over the labels the collector never reads."""

from __future__ import annotations

import gzip
import math
from collections import defaultdict
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from cluster.remote.metrics_digest import END, KEEP, Digest, render
from cluster.telemetry.prom import parse_index, series

# Recorded from a real Ray 2.60 node serving one app with ten replicas, after traffic.
REAL_PAGE = Path(__file__).parent / "data" / "ray_serve_metrics_10_replicas.txt.gz"

Group = tuple[str, tuple[tuple[str, str], ...]]


def reference(text: str) -> dict[Group, float]:
    """The whole page through prometheus_client, summed over every label KEEP drops."""
    out: dict[Group, float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in KEEP:
                out[(s.name, tuple((k, s.labels.get(k, "")) for k in KEEP[s.name]))] += s.value
    return dict(out)


def real_page() -> str:
    return gzip.decompress(REAL_PAGE.read_bytes()).decode()


def test_the_digest_of_a_real_ray_page_is_prometheus_clients_sum() -> None:
    text = real_page()
    digest = Digest()
    first = digest.feed(text)
    assert first == reference(text)
    assert digest.feed(text) == first  # the same page again, from the caches: nothing grew
    names = {name for name, _ in first}
    assert "ray_serve_deployment_processing_latency_ms_bucket" in names
    assert "ray_serve_deployment_request_counter_total" in names
    rendered = render(first)
    assert len(rendered) < len(text) / 50  # 1.7 MB of page, a few KB of digest
    assert rendered.endswith(END)


def test_counters_stay_monotonic_across_a_replica_restart() -> None:
    def page(a: float, b: float, queued: float) -> str:
        return (
            "# TYPE ray_serve_deployment_request_counter_total counter\n"
            f'ray_serve_deployment_request_counter_total{{application="m--1",replica="a",WorkerId="w1"}} {a}\n'
            f'ray_serve_deployment_request_counter_total{{application="m--1",replica="b",WorkerId="w2"}} {b}\n'
            "# TYPE ray_serve_http_request_latency_ms histogram\n"
            f'ray_serve_http_request_latency_ms_bucket{{application="m--1",le="5.0",route="/m",replica="a"}} {a}\n'
            f'ray_serve_http_request_latency_ms_bucket{{application="m--1",le="5.0",route="/m",replica="b"}} {b}\n'
            "# TYPE ray_serve_deployment_queued_queries gauge\n"
            f'ray_serve_deployment_queued_queries{{application="m--1",handle="h1"}} {queued}\n'
            f'ray_serve_deployment_queued_queries{{application="m--1",handle="h2"}} {queued}\n'
            "# TYPE something_else counter\n"
            'something_else_total{application="m--1"} 5\n'
        )

    digest = Digest()
    bucket = ("ray_serve_http_request_latency_ms_bucket", (("application", "m--1"), ("le", "5.0")))
    queued = ("ray_serve_deployment_queued_queries", (("application", "m--1"),))
    first = digest.feed(page(10, 20, 1))
    assert first[bucket] == 30 and first[queued] == 2
    # Replica b restarted: its counter went from 20 back to 3; that is 3 new requests.
    second = digest.feed(page(15, 3, 0))
    assert second[bucket] == 30 + 5 + 3
    assert second[queued] == 0  # gauges are not accumulated
    replica_b = (
        "ray_serve_deployment_request_counter_total",
        (("application", "m--1"), ("replica", "b")),
    )
    assert second[replica_b] == 23
    assert not any(name.startswith("something_else") for name, _ in second)


def test_the_console_reads_a_digest_as_prometheus_client_does() -> None:
    values = {
        (
            "ray_serve_num_http_requests_total",
            (("application", 'a}"b\\c\nd'), ("status_code", "200")),
        ): 7.0,
        ("ray_serve_deployment_queued_queries", (("application", "a--1"),)): math.nan,
        (
            "ray_serve_http_request_latency_ms_bucket",
            (("application", "a--1"), ("le", "+Inf")),
        ): 3.0,
    }
    text = render(values)
    whole = [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]
    for _ in range(2):  # the second time from the series cache
        got = [(*series(key), value) for key, value in parse_index(text).items()]
        assert repr(sorted(map(repr, got))) == repr(sorted(map(repr, whole)))
    labels = next(lab for name, lab, _ in got if name == "ray_serve_num_http_requests_total")
    assert labels["application"] == 'a}"b\\c\nd'
