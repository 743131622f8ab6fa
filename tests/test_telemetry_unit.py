"""Telemetry arithmetic on synthetic scrapes: percentiles, rates, balance, errors, resets."""

from __future__ import annotations

import numpy as np
import pytest

from cluster.telemetry.aggregate import version_stats
from cluster.telemetry.prom import parse_index
from cluster.telemetry.quantile import histogram_quantile
from cluster.telemetry.window import NodeWindow, Scrape

BOUNDS = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, float("inf")]


def cumulative(values: list[float]) -> list[tuple[float, float]]:
    return [(b, float(sum(v <= b for v in values))) for b in BOUNDS]


def test_quantile_interpolates_inside_the_bucket() -> None:
    assert histogram_quantile(0.5, [(1.0, 0.0), (2.0, 10.0), (float("inf"), 10.0)]) == 1.5
    assert histogram_quantile(0.95, []) is None
    assert (
        histogram_quantile(0.99, [(10.0, 0.0), (float("inf"), 5.0)]) == 10.0
    )  # in +Inf: the last bound


def test_quantile_is_within_one_bucket_of_the_truth() -> None:
    rng = np.random.default_rng(0)
    values = rng.lognormal(1.5, 0.6, 5000).tolist()
    got = histogram_quantile(0.95, cumulative(values))
    true = float(np.percentile(values, 95))
    assert got is not None
    upper = next(b for b in BOUNDS if b >= true)
    lower = max(b for b in (0.0, *BOUNDS) if b < true)
    assert lower <= got <= upper


def page(requests: dict[str, int], lat: list[float], errors: int = 0) -> str:
    lines = ["# TYPE ray_serve_deployment_request_counter counter"]
    for replica, n in requests.items():
        lines.append(
            f'ray_serve_deployment_request_counter_total{{application="m--2",deployment="ModelServer",replica="{replica}"}} {n}'
        )
    lines.append("# TYPE ray_serve_num_http_requests counter")
    ok = sum(requests.values()) - errors
    lines.append(
        f'ray_serve_num_http_requests_total{{application="m--2",route="/m",method="POST",status_code="200"}} {ok}'
    )
    lines.append(
        f'ray_serve_num_http_requests_total{{application="m--2",route="/m",method="POST",status_code="500"}} {errors}'
    )
    lines.append(
        'ray_serve_num_http_requests_total{application="m--monitor",route="/x",method="POST",status_code="200"} 99'
    )
    lines.append("# TYPE ray_serve_http_request_latency_ms histogram")
    for bound, count in cumulative(lat):
        le = "+Inf" if bound == float("inf") else str(bound)
        lines.append(
            f'ray_serve_http_request_latency_ms_bucket{{application="m--2",route="/m",le="{le}"}} {count}'
        )
    lines.append(
        f'ray_serve_http_request_latency_ms_count{{application="m--2",route="/m"}} {len(lat)}'
    )
    lines.append("# TYPE ray_serve_deployment_replica_healthy gauge")
    for replica in requests:
        lines.append(
            f'ray_serve_deployment_replica_healthy{{application="m--2",deployment="ModelServer",replica="{replica}"}} 1'
        )
    lines.append("# TYPE other_metric gauge\nother_metric 5")
    return "\n".join(lines) + "\n"


def test_rates_balance_and_errors_over_the_window() -> None:
    window = NodeWindow(keep=5)
    window.add(Scrape(100.0, parse_index(page({"a": 10, "b": 10}, [1.5] * 20))))
    window.add(
        Scrape(110.0, parse_index(page({"a": 70, "b": 30}, [1.5] * 20 + [8.0] * 80, errors=4)))
    )
    stats = version_stats("m", {"n1": window}, window_s=30, now=110.0)
    s = stats["2"]
    assert s.requests == 80 and s.requests_per_s == pytest.approx(8.0)
    assert s.replica_requests == {"a": 60.0, "b": 20.0}
    assert s.imbalance_max_mean == pytest.approx(1.5) and s.imbalance_cv == pytest.approx(0.5)
    assert s.error_rate == pytest.approx(4 / 80)
    assert s.p50_ms is not None and 5.0 <= s.p50_ms <= 10.0  # the 80 new requests, not the old 20
    assert s.healthy_replicas == 2
    assert "monitor" not in stats


def test_replicas_are_unknown_until_their_health_gauges_arrive() -> None:
    """Ray exports the health gauges seconds after the counters: until then the count is
    unknown (null, shown as "-"), never "0 of 0 healthy" as if nothing ran."""
    from rich.console import Console

    from cluster.telemetry.frame import NodeHealth, TelemetryFrame
    from console.render.telemetry import frame_view

    def without_gauges(text: str) -> str:
        return "\n".join(line for line in text.splitlines() if "replica_healthy" not in line)

    window = NodeWindow(keep=5)
    window.add(Scrape(99.0, parse_index(without_gauges(page({"a": 5, "b": 5}, [1.0] * 10)))))
    window.add(Scrape(100.0, parse_index(without_gauges(page({"a": 10, "b": 10}, [1.0] * 20)))))
    s = version_stats("m", {"n1": window}, window_s=30, now=100.0)["2"]
    assert (s.healthy_replicas, s.replicas) == (None, None)
    frame = TelemetryFrame("m", 0.0, 10, {"2": s}, {"n1": NodeHealth.OK}, None)
    assert frame.to_dict()["versions"]["2"]["replicas"] is None
    console = Console(record=True, width=200)
    console.print(frame_view(frame))
    lines = console.export_text().splitlines()
    header = [c.strip() for c in next(ln for ln in lines if "replicas" in ln).split("┃")]
    row = [c.strip() for c in next(ln for ln in lines if ln.startswith("│ 2 ")).split("│")]
    assert row[header.index("replicas")] == "-"
    window.add(Scrape(101.0, parse_index(page({"a": 11, "b": 10}, [1.0] * 21))))
    s = version_stats("m", {"n1": window}, window_s=30, now=101.0)["2"]
    assert (s.healthy_replicas, s.replicas) == (2, 2)


def test_a_counter_reset_counts_from_zero() -> None:
    window = NodeWindow(keep=5)
    window.add(Scrape(0.0, parse_index(page({"a": 500}, [1.0] * 5))))
    window.add(Scrape(1.0, parse_index(page({"a": 7}, [1.0] * 7))))  # replica restarted
    assert version_stats("m", {"n": window}, 10, 1.0)["2"].replica_requests == {"a": 7.0}


def test_tail_view_shows_versions_nodes_and_drift() -> None:
    from rich.console import Console

    from cluster.telemetry.aggregate import VersionStats
    from cluster.telemetry.frame import MonitorSummary, NodeHealth, TelemetryFrame
    from console.render.telemetry import frame_view

    stats = VersionStats("2", requests_per_s=12.5, p50_ms=3.0, p95_ms=9.5, p99_ms=20.0)
    stats.healthy_replicas = stats.replicas = 2
    stats.imbalance_max_mean = 1.1
    monitor = MonitorSummary.from_json(
        {
            "versions": {
                "2": {
                    "last_n": {"n": 40, "accuracy": 0.95, "f1": 0.96},
                    "drift": {"max_psi": 0.31, "worst_feature": "b", "warning": True,
                              "threshold": 0.2, "rows": 40, "psi": {"b": 0.31}},
                }
            }
        }
    )  # fmt: skip
    frame = TelemetryFrame(
        app="m",
        at=0.0,
        window_s=10,
        versions={"2": stats},
        nodes={"n1": NodeHealth.OK, "n2": NodeHealth.STALE},
        monitor=monitor,
        errors=("n2: ConnectError: refused",),
    )
    console = Console(record=True, width=200)
    console.print(frame_view(frame))
    text = console.export_text()
    assert "12.5" in text and "9.5" in text and "0.950" in text and "0.31 (b)" in text
    assert "n2 (stale)" in text and "refused" in text


def test_a_version_without_http_traffic_uses_processing_latency() -> None:
    """A canary reached through the live version has no proxy latency of its own in the window."""

    def scrape(at: float, count: float) -> Scrape:
        lines = [
            "# TYPE ray_serve_http_request_latency_ms histogram",
            'ray_serve_http_request_latency_ms_bucket{application="m--2",le="10.0"} 5',  # old preview traffic
            'ray_serve_http_request_latency_ms_bucket{application="m--2",le="+Inf"} 5',
            "# TYPE ray_serve_deployment_processing_latency_ms histogram",
            f'ray_serve_deployment_processing_latency_ms_bucket{{application="m--2",le="2.0"}} {count}',
            f'ray_serve_deployment_processing_latency_ms_bucket{{application="m--2",le="+Inf"}} {count}',
        ]
        return Scrape(at, parse_index("\n".join(lines) + "\n"))

    window = NodeWindow(keep=5)
    window.add(scrape(0.0, 0))
    window.add(scrape(5.0, 40))
    s = version_stats("m", {"n": window}, 10, 5.0)["2"]
    assert s.p95_ms is not None and 0 < s.p95_ms <= 2.0
