"""`models update` gathers labelled inputs from the nodes: the node-side script streams what
the monitor stored (rows whose input was logged and whose label arrived), in blocks; the
gatherer deduplicates by request id and counts per node. Real SQLite written by the real
monitor tracker; the node is this machine (`connection: local`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cluster.inventory import load_inventory
from cluster.transport import Connections
from cluster.updates.gather import Gathered, GatherProgress, gather
from serving.monitor.records import PredictionRecord
from serving.monitor.tracker import AccuracyTracker


def inventory(tmp_path: Path, remote: Path) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        f"defaults:\n  remote_dir: {remote}\n  python: {sys.executable}\n"
        "hosts:\n  me: {connection: local}\n"
        "targets:\n  local: {topology: single, host: me}\n"
        "apps:\n  churn: {target: local, model: churn:1}\n"
    )
    return path


def monitor_rows(db: Path, n: int, *, logged: bool = True) -> None:
    tracker = AccuracyTracker(db)
    tracker.register("1", "classifier", [0, 1])
    records = [
        PredictionRecord(
            f"r{i}",
            "1",
            "live",
            0,
            [0.6, 0.4],
            1000.0 + i,
            [float(i), None, "one-year"] if logged else None,
        )
        for i in range(n)
    ]
    tracker.record(records, now=1000.0 + n)
    tracker.feedback([(f"r{i}", i % 2) for i in range(0, n, 2)], now=2000.0)  # every other
    tracker.store.close()


@pytest.mark.parametrize("rows", [5, 2500])  # one block, and three
async def test_labelled_inputs_stream_in_blocks_and_come_back_whole(
    tmp_path: Path, rows: int
) -> None:
    remote = tmp_path / "remote"
    monitor_rows(remote / "monitor" / "local" / "churn.sqlite", rows)
    inv = load_inventory(inventory(tmp_path, remote))
    events = []
    async with Connections(inv) as connections:
        async for event in gather(connections, inv.apps["churn"], since_ts=0.0):
            events.append(event)
    *progress, done = events
    assert isinstance(done, Gathered) and all(isinstance(p, GatherProgress) for p in progress)
    labelled = (rows + 1) // 2
    assert done.per_node == {"me": labelled} and done.duplicates == 0
    assert progress[-1].done and progress[-1].rows == labelled
    first = done.rows[0]
    assert (
        first.request_id == "r0" and first.label == 0 and first.features == [0.0, None, "one-year"]
    )
    assert [r.request_id for r in done.rows[:3]] == ["r0", "r2", "r4"]


async def test_a_node_without_logged_inputs_says_so(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    inv = load_inventory(inventory(tmp_path, remote))
    async with Connections(inv) as connections:
        events = [e async for e in gather(connections, inv.apps["churn"], since_ts=0.0)]
    assert (
        isinstance(events[0], GatherProgress) and events[0].note == "no monitor file on this node"
    )
    monitor_rows(remote / "monitor" / "local" / "churn.sqlite", 4, logged=False)
    async with Connections(inv) as connections:
        events = [e async for e in gather(connections, inv.apps["churn"], since_ts=0.0)]
    done = events[-1]
    assert isinstance(done, Gathered) and done.rows == [] and done.per_node == {"me": 0}
