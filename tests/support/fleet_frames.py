"""Deterministic fleet snapshots, replayed to the console instead of a live feed.

The same tick always gives the same frames (no clock, no randomness), so screens and their
snapshots are reproducible; the shapes are the collector's own types. Used by the Pilot and
snapshot tests and by bench/console.py (which asks for 200 nodes of 11 replicas).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from pathlib import Path

from cluster.fleet import FleetSnapshot, app_row
from cluster.inventory import Inventory, load_inventory
from cluster.provision.status import AppStatus, Split, Traffic, VersionStatus
from cluster.provision.topology import clusters_of
from cluster.telemetry.aggregate import VersionStats
from cluster.telemetry.frame import (
    Drift,
    MonitorSummary,
    NodeHealth,
    Quality,
    TelemetryFrame,
    VersionQuality,
)

START = 1_790_000_000.0  # a fixed epoch second: frames carry no wall clock

INVENTORY = """\
defaults:
  user: ops
  model_store: {store}
hosts:
  node1: {{address: 127.0.0.11}}
  node2: {{address: 127.0.0.12}}
{edge_hosts}
targets:
  grid:
    topology: cluster
    head: node1
    workers: [node2]
  shops:
    topology: edge
    hosts: [{edge_names}]
    rollout: {{batch: 2, max_failures: 1}}
apps:
  cancer:
    target: grid
    model: breast-cancer:1
    replicas: {replicas}
    route: /cancer
    gates: ["accuracy>=blue-0.02", "p95_ms<=50"]
  shelf:
    target: shops
    model: breast-cancer:2
    replicas: 1
    route: /shelf
"""


def write_inventory(
    directory: Path, edge: int = 3, replicas: int = 2, store: Path | None = None
) -> Path:
    names = [f"shop{i:03d}" for i in range(1, edge + 1)]
    hosts = "\n".join(
        f"  {n}: {{address: 127.0.{1 + i // 250}.{10 + i % 250}}}" for i, n in enumerate(names)
    )
    text = INVENTORY.format(
        edge_hosts=hosts,
        edge_names=", ".join(names),
        replicas=replicas,
        store=store or directory / "models",
    )
    path = directory / "inventory.yaml"
    path.write_text(text)
    return path


def _wave(tick: int, period: float, low: float, high: float, phase: float = 0.0) -> float:
    return low + (high - low) * (0.5 + 0.5 * math.sin(2 * math.pi * (tick / period) + phase))


def _stats(
    version: str, tick: int, rps: float, replicas: int, p95: float, errors: float
) -> VersionStats:
    s = VersionStats(version)
    s.requests_per_s = rps
    s.requests = rps * 10
    s.timed_requests = s.requests
    s.p50_ms = round(p95 * 0.45, 2)
    s.p95_ms = round(p95, 2)
    s.p99_ms = round(p95 * 1.6, 2)
    s.processing_p50_ms, s.processing_p95_ms, s.processing_p99_ms = s.p50_ms, s.p95_ms, s.p99_ms
    s.error_rate = errors
    s.replica_error_rate = errors
    weights = [1.0 + 0.35 * ((i * 7 + tick) % 5) / 4 for i in range(replicas)]
    total = sum(weights)
    s.replica_requests = {
        f"{version}-r{i:02d}": round(s.requests * w / total, 1) for i, w in enumerate(weights)
    }
    s.replica_requests_total = sum(s.replica_requests.values())
    counts = list(s.replica_requests.values())
    mean = sum(counts) / len(counts)
    s.imbalance_max_mean = max(counts) / mean if mean else None
    s.imbalance_cv = (
        math.sqrt(sum((c - mean) ** 2 for c in counts) / len(counts)) / mean if mean else None
    )
    s.queued = float(tick % 3)
    s.ongoing = float(tick % 4)
    s.healthy_replicas = s.replicas = replicas
    return s


def _quality(version: str, accuracy: float, n: int, drifting: bool) -> VersionQuality:
    psi = {"mean radius": 0.31 if drifting else 0.05, "mean texture": 0.12, "worst area": 0.04}
    drift = Drift(rows=400, max_psi=max(psi.values()), worst_feature=max(psi, key=lambda k: psi[k]),
                  threshold=0.2, warning=drifting, drifting=("mean radius",) if drifting else (), psi=psi)  # fmt: skip
    return VersionQuality(version, "classifier", n, Quality(n=n, accuracy=accuracy, f1=accuracy - 0.01),
                          drift=drift, drift_status="ok")  # fmt: skip


def snapshot(
    inventory: Inventory,
    tick: int,
    replicas: int = 2,
    edge_replicas: int = 1,
    live_accuracy: float = 0.962,
) -> FleetSnapshot:
    """The fleet at `tick` (one second each): `cancer` runs a 10% canary of v2 beside v1, one
    edge host of `shelf` is stale, drift shows on v2; each edge host runs `edge_replicas`."""
    at = START + tick
    frames: dict[str, TelemetryFrame] = {}
    deployed: dict[str, tuple[AppStatus, ...]] = {}
    # cancer: v1 live, v2 canary 10%.
    v1 = _stats("1", tick, _wave(tick, 60, 40, 80), replicas, _wave(tick, 45, 8, 14), 0.0)
    v2 = _stats("2", tick, _wave(tick, 60, 4, 9, 0.5), replicas, _wave(tick, 45, 7, 11, 1.0), 0.002)
    monitor = MonitorSummary(
        {
            "1": _quality("1", live_accuracy, 300 + 4 * tick, False),
            "2": _quality("2", 0.981, 30 + tick, True),
        },
        {"feedback": 10 * tick, "joined": max(10 * tick - 3, 0), "waiting": min(3, 10 * tick)},
        1000,
    )
    frames["cancer"] = TelemetryFrame(
        "cancer",
        at,
        10.0,
        {"1": v1, "2": v2},
        {"node1": NodeHealth.OK, "node2": NodeHealth.OK},
        monitor,
    )
    live = VersionStatus("1", True, "RUNNING", replicas, replicas, Traffic(Split("2", 0.1)))
    canary = VersionStatus("2", False, "RUNNING", replicas, replicas)
    deployed["cancer"] = (
        AppStatus(
            "grid", "cancer", "1", "1", (live, canary), 2 * replicas, 2 * replicas, True, "healthy"
        ),
    )
    # shelf: v2 on every edge host; the second one has gone stale.
    shops = inventory.targets["shops"]
    nodes = {
        h: (NodeHealth.STALE if i == 1 else NodeHealth.OK) for i, h in enumerate(shops.edge_hosts)
    }
    s2 = _stats(
        "2", tick, _wave(tick, 90, 2, 6) * len(nodes), len(nodes), _wave(tick, 30, 3, 5), 0.0
    )
    monitors = {
        f"shops.{h}": MonitorSummary({"2": _quality("2", 0.95, 40, False)})
        for h in list(nodes)[:20]
    }
    frames["shelf"] = TelemetryFrame(
        "shelf",
        at,
        10.0,
        {"2": s2},
        nodes,
        None,
        (f"{list(nodes)[1]}: no digest arrived in time",) if len(nodes) > 1 else (),
        monitors,
    )
    deployed["shelf"] = tuple(
        AppStatus(
            f"shops.{h}",
            "shelf",
            "2",
            "2",
            (VersionStatus("2", True, "RUNNING", 1, 1),),
            1,
            1,
            True,
            "healthy",
        )
        for h in shops.edge_hosts
    )
    rows = []
    for name, app in inventory.apps.items():
        target = inventory.targets[app.target]
        total = sum(len(c.hosts) for c in clusters_of(inventory, target))
        rows.append(app_row(app, target, total, frames.get(name), deployed.get(name, ())))
    return FleetSnapshot(at, frames, deployed, tuple(rows))


def replay(  # type: ignore[no-untyped-def]
    inventory: Inventory,
    ticks: int = 30,
    interval: float = 0.0,
    replicas: int = 2,
    edge_replicas: int = 1,
    live_accuracy: float = 0.962,
):
    """A FleetSource: `ticks` snapshots, `interval` seconds apart (0: as fast as the app reads);
    `live_accuracy`: cancer v1's on live labels (its holdout's is 0.924)."""

    async def source() -> AsyncIterator[FleetSnapshot]:
        for tick in range(ticks):
            yield snapshot(inventory, tick, replicas, edge_replicas, live_accuracy)
            await asyncio.sleep(interval)
        await asyncio.Event().wait()  # then nothing new, like a quiet fleet

    return source


def load(path: Path) -> Inventory:
    return load_inventory(path, env={})


def checked(inventory: Inventory):  # type: ignore[no-untyped-def]
    """A Checker: every host answers the same facts in the same time, but the second fails."""
    from cluster.check import CheckFinished, CheckStarted, HostChecked, HostCheckFailed, HostFacts

    async def check(inv: Inventory) -> AsyncIterator[object]:
        hosts = list(inv.hosts.values())
        yield CheckStarted(tuple(h.name for h in hosts))
        for i, host in enumerate(hosts):
            if i == 1:
                yield HostCheckFailed(host.name, host.endpoint, "HostUnreachable",
                                      f"no SSH connection to {host.address}:22: timed out", 5.0)  # fmt: skip
                continue
            facts = HostFacts(host.name, "Linux", "6.1.0", "x86_64", 8, 0.42, 32 * 2**30, 20 * 2**30,
                              100 * 2**30, "3.11.7", "/opt/venv/bin/python", "2.60.0", "1.20.1")  # fmt: skip
            yield HostChecked(host.name, host.endpoint, facts, 0.15 + 0.01 * i)
        yield CheckFinished(len(hosts) - 1, 1, 5.0)

    return check
