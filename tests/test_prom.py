"""The fast path through a /metrics page gives exactly what prometheus_client gives when it
parses the whole page, for the families the collector reads."""

from __future__ import annotations

import gzip
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from cluster.telemetry.prom import WANTED, parse, parse_index
from cluster.telemetry.window import index

# Recorded from a real Ray 2.60 node serving one app with ten replicas, after traffic.
REAL_PAGE = Path(__file__).parent / "data" / "ray_serve_metrics_10_replicas.txt.gz"


def reference(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(text)
        if family.name in WANTED
        for s in family.samples
    ]


def normalized(samples: list[tuple[str, dict[str, str], float]]) -> list[str]:
    return sorted(repr((n, sorted(labels.items()), v)) for n, labels, v in samples)


def check(text: str) -> None:
    got = [(s.name, s.labels, s.value) for s in parse(text)]
    assert normalized(got) == normalized(reference(text))
    assert repr(sorted(parse_index(text).items())) == repr(sorted(index(parse(text)).items()))


def test_a_real_ray_page_twice() -> None:
    text = gzip.decompress(REAL_PAGE.read_bytes()).decode()
    check(text)
    check(text)  # the second time from the series cache
    assert len(parse(text)) == 310


def test_quoting_timestamps_and_pages_without_type_lines() -> None:
    tricky = (
        "# HELP ray_serve_num_http_requests_total Requests.\n"
        "# TYPE ray_serve_num_http_requests_total counter\n"
        'ray_serve_num_http_requests_total{application="a--1",route="/x}y",note="say \\"hi\\""} 7 1700000000000\n'
        "# TYPE ray_serve_deployment_queued_queries gauge\n"
        'ray_serve_deployment_queued_queries{application="a--1"} NaN\n'
        "# TYPE ray_serve_http_request_latency_ms histogram\n"
        'ray_serve_http_request_latency_ms_bucket{application="a--1",le="+Inf"} 3.0\n'
        "ray_serve_http_request_latency_ms_count 3\n"
        "# TYPE something_else counter\n"
        'something_else_total{application="a--1"} 1\n'
    )
    check(tricky)
    got = {s.name: s for s in parse(tricky)}
    assert got["ray_serve_num_http_requests_total"].labels["route"] == "/x}y"
    assert got["ray_serve_num_http_requests_total"].labels["note"] == 'say "hi"'
    assert got["ray_serve_num_http_requests_total"].value == 7
    assert "something_else_total" not in got
    nan = got["ray_serve_deployment_queued_queries"].value
    assert nan != nan  # NaN survives as NaN
    untyped = "\n".join(line for line in tricky.splitlines() if not line.startswith("#")) + "\n"
    assert {s.name for s in parse(untyped)} == set(got)
