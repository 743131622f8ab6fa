"""The fleet logic of a swap on an edge target, with each host's own swap faked (a unit test:
the per-host swap, rollback and retirement run for real in tests/provision/test_provision_e2e.py).

Batches run their hosts at once; a host failing its gates goes back alone while the fleet
stays within max_failures; one failure more and every host touched goes back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cluster.errors import HostUnreachable
from cluster.events import Event
from cluster.inventory import load_inventory
from cluster.models.store import ModelStore
from cluster.provision.topology import RayCluster
from cluster.rollout import swap as swap_module
from cluster.rollout.events import GateFailed, SwapFinished, SwapOptions, SwapStep
from cluster.rollout.gates_eval import GateResult
from cluster.rollout.history import History, read_history
from cluster.rollout.phases import ClusterSwap, Phase
from cluster.transport import Connections

INVENTORY = """\
hosts:
  s1: {address: 127.0.0.81}
  s2: {address: 127.0.0.82}
  s3: {address: 127.0.0.83}
  s4: {address: 127.0.0.84}
targets:
  shops:
    topology: edge
    hosts: [s1, s2, s3, s4]
    rollout: {batch: 2, max_failures: 1}
apps:
  shelf: {target: shops, model: breast-cancer}
"""


class FakeServe:
    """Stands for one host's Serve and its state: after the swap, version 2 is live."""

    live = "2"

    def __init__(self, cluster: str) -> None:
        self.cluster_id = cluster

    async def read(self) -> Any:
        return self


class Fleet:
    """Fakes for one host's swap, restore and retirement, recording what happened when."""

    def __init__(self, failing: set[str], exploding: frozenset[str] = frozenset(),
                 lost: frozenset[str] = frozenset(), returning: frozenset[str] = frozenset(),
                 ) -> None:  # fmt: skip
        self.failing = failing
        self.exploding = exploding
        self.lost = lost  # gone mid-bake, and still unreachable for the rollback
        self.returning = returning  # of those, back for any later attempt
        self.tried: set[str] = set()
        self.spans: dict[str, tuple[float, float]] = {}
        self.restored: list[str] = []
        self.retired: list[str] = []

    async def swap_cluster(
        self, run: swap_module.SwapRun, cluster: RayCluster
    ) -> AsyncIterator[Event]:
        record = ClusterSwap(cluster, FakeServe(cluster.id), "1")  # type: ignore[arg-type]
        run.touched.append(record)
        start = asyncio.get_running_loop().time()
        yield SwapStep(run.app.name, cluster.id, "deploy", "beside 1")
        record.move(Phase.DEPLOYED)
        record.last = "deploy: beside 1"
        await asyncio.sleep(0.05)
        self.spans[cluster.id] = (start, asyncio.get_running_loop().time())
        if cluster.id in self.exploding:
            raise ValueError("an unforeseen bug")
        if cluster.id in self.lost:
            raise HostUnreachable(cluster.id, "connection refused")
        if cluster.id in self.failing:
            raise GateFailed("bake@100%", [GateResult("accuracy>=0.9", 0.5, 0.9, False, "low")])
        record.move(Phase.READY)
        record.move(Phase.SHIFTED)
        yield SwapStep(run.app.name, cluster.id, "promote", "2 serves 100%")

    async def restore(self, connections: Connections, serve: FakeServe, version: str,
                      store: Any) -> float:  # fmt: skip
        first = serve.cluster_id not in self.tried
        self.tried.add(serve.cluster_id)
        if serve.cluster_id in self.lost and (first or serve.cluster_id not in self.returning):
            raise HostUnreachable(serve.cluster_id, "connection refused")
        self.restored.append(serve.cluster_id)
        return 0.01

    async def retire_others(self, serve: FakeServe, state: Any) -> list[str]:
        await asyncio.sleep(0.01)  # Serve takes a while to remove replicas
        self.retired.append(serve.cluster_id)
        return ["1"]


class NoLeases:
    """Stands in for cluster.lease.Leases: these hosts are never connected to."""

    taken_over: list[object] = []

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    async def __aenter__(self) -> NoLeases:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def mark(self, cluster: str, phase: str) -> None:
        return None


async def run(tmp_path: Path, store: ModelStore, fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Event], SwapFinished]:  # fmt: skip
    monkeypatch.setattr(
        swap_module.SwapRun, "swap_cluster", lambda run, c: fleet.swap_cluster(run, c)
    )
    monkeypatch.setattr(swap_module, "Leases", NoLeases)  # leases are tested over real sshd
    monkeypatch.setattr(swap_module, "restore", fleet.restore)
    monkeypatch.setattr(  # a failed host's reachability check: the host is faked too
        swap_module.SwapRun, "_restore_failed_host",
        lambda run, record: fleet.restore(run.connections, record.serve, record.old, None),
    )  # fmt: skip
    monkeypatch.setattr(swap_module, "retire_others", fleet.retire_others)
    path = tmp_path / "inventory.yaml"
    path.write_text(INVENTORY + f"defaults:\n  model_store: {store.root}\n")
    inventory = load_inventory(path)
    options = SwapOptions(to_version="2", retire_after_s=0)
    events: list[Event] = []
    async with Connections(inventory) as connections:  # never connects: the hosts are faked
        history = History(tmp_path / "history.jsonl")
        async for event in swap_module.swap(
            connections, store, inventory.apps["shelf"], options, history
        ):
            events.append(event)
    assert isinstance(events[-1], SwapFinished)
    return events, events[-1]


async def test_a_batch_swaps_its_hosts_at_once(
    tmp_path: Path, example_store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = Fleet(failing=set())
    _, finished = await run(tmp_path, example_store, fleet, monkeypatch)
    assert finished.outcome == "promoted" and finished.from_version == "1"
    (a1, b1), (a2, b2) = fleet.spans["shops.s1"], fleet.spans["shops.s2"]
    assert a2 < b1 and a1 < b2  # s1 and s2 overlapped
    assert fleet.spans["shops.s3"][0] >= max(b1, b2)  # the second batch waited for the first
    assert sorted(fleet.retired) == ["shops.s1", "shops.s2", "shops.s3", "shops.s4"]


async def test_within_max_failures_only_the_failing_host_goes_back(
    tmp_path: Path, example_store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = Fleet(failing={"shops.s2"})
    _, finished = await run(tmp_path, example_store, fleet, monkeypatch)
    assert finished.outcome == "partial" and finished.rolled_back == ("shops.s2",)
    assert fleet.restored == ["shops.s2"]
    assert sorted(fleet.retired) == ["shops.s1", "shops.s3", "shops.s4"]
    last = read_history(tmp_path / "history.jsonl")[-1]
    assert last["kind"] == "swap_finished" and last["outcome"] == "partial" and last["from"] == "1"


async def test_past_max_failures_the_whole_fleet_goes_back(
    tmp_path: Path, example_store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = Fleet(failing={"shops.s2", "shops.s3"})
    events, finished = await run(tmp_path, example_store, fleet, monkeypatch)
    assert finished.outcome == "rolled_back"
    # s2 went back alone after batch 1; batch 2's failure put every touched host back.
    assert fleet.restored[0] == "shops.s2"
    assert sorted(fleet.restored) == ["shops.s1", "shops.s2", "shops.s3", "shops.s4"]
    assert fleet.retired == []  # nothing was retired: every host still had its old version
    rollbacks = [e for e in events if isinstance(e, SwapStep) and e.phase == "rollback"]
    assert len(rollbacks) == 4


async def test_an_unforeseen_error_rolls_back_and_says_what_it_was(
    tmp_path: Path, example_store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = Fleet(failing=set(), exploding=frozenset({"shops.s2"}))
    _, finished = await run(tmp_path, example_store, fleet, monkeypatch)
    assert finished.outcome == "failed" and "ValueError: an unforeseen bug" in finished.detail
    assert sorted(fleet.restored) == [
        "shops.s1",
        "shops.s2",
    ]  # the batch went back; s3, s4 untouched


async def test_a_host_lost_within_max_failures_is_named_and_the_fleet_goes_on(
    tmp_path: Path, example_store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = Fleet(failing=set(), lost=frozenset({"shops.s2"}))
    events, finished = await run(tmp_path, example_store, fleet, monkeypatch)
    assert finished.outcome == "partial", finished.detail
    assert "shops.s2 (failed and could not be reached" in finished.detail
    assert "run the same swap again" in finished.detail
    assert fleet.restored == []  # s2 could not be reached; the others passed
    assert sorted(fleet.retired) == ["shops.s1", "shops.s3", "shops.s4"]
    said = {(e.cluster, e.phase) for e in events if isinstance(e, SwapStep)}
    assert {("shops.s2", "host_failed"), ("shops.s2", "rollback_failed")} <= said
    history = read_history(tmp_path / "history.jsonl")
    lost = [e for e in history if e.get("phase") == "host_failed"]
    assert [(e["cluster"], e["reached"], e["detail"]) for e in lost] == [
        ("shops.s2", "deploy: beside 1", "connection refused")
    ]
    assert history[-1]["outcome"] == "partial" and history[-1]["left"] == ["shops.s2"]


async def test_a_host_lost_past_max_failures_puts_the_others_back_and_is_named(
    tmp_path: Path, example_store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = Fleet(failing={"shops.s1"}, lost=frozenset({"shops.s2"}))
    _, finished = await run(tmp_path, example_store, fleet, monkeypatch)
    assert finished.outcome == "failed", finished.detail
    assert finished.detail.startswith("hosts failed (shops.s1 in bake@100%, shops.s2: connection")
    assert "back on the old version but shops.s2, which could not be reached" in finished.detail
    assert fleet.restored == ["shops.s1"] and fleet.retired == []


async def test_a_lost_host_back_when_the_fleet_goes_back_is_restored_and_not_left(
    tmp_path: Path, example_store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """s1 is lost in batch 1 (within max_failures: left, the fleet goes on); by the time
    batch 2's failed gate puts the fleet back, s1 answers again and goes back with the rest."""
    fleet = Fleet(failing={"shops.s3"}, lost=frozenset({"shops.s1"}),
                  returning=frozenset({"shops.s1"}))  # fmt: skip
    events, finished = await run(tmp_path, example_store, fleet, monkeypatch)
    assert finished.outcome == "rolled_back", finished.detail
    assert sorted(fleet.restored) == ["shops.s1", "shops.s2", "shops.s3", "shops.s4"]
    said = [(e.cluster, e.phase) for e in events if isinstance(e, SwapStep)]
    assert said.index(("shops.s1", "rollback_failed")) < said.index(("shops.s1", "rollback"))
    last = read_history(tmp_path / "history.jsonl")[-1]
    assert last["outcome"] == "rolled_back" and "left" not in last, last
    assert "shops.s1" in last["rolled_back"]


S1, S2, S3, S4 = (f"shops.s{i}" for i in range(1, 5))


# (where it is cancelled, what must go back, what else may: a batch's other host may have
# been touched in the same instant)
@pytest.mark.parametrize(
    ("stop_at", "back", "may"),
    [
        (("deploy", S1), {S1}, {S2}),  # batch 1 deploying: what it touched goes back
        (("promote", S3), {S1, S2, S3}, {S4}),  # batch 1 had passed: it goes back too
        (("retire", S1), set(), set()),  # every host passed: the new version stays
    ],
    ids=["first-batch", "second-batch", "retiring"],
)
async def test_a_swap_cancelled_in_any_phase_puts_back_what_had_not_passed(
    tmp_path: Path,
    example_store: ModelStore,
    monkeypatch: pytest.MonkeyPatch,
    stop_at: tuple[str, str],
    back: set[str],
    may: set[str],
) -> None:
    """Ctrl-C, SIGTERM or SIGHUP cancel the task running the swap, wherever it is."""
    fleet = Fleet(failing=set())
    monkeypatch.setattr(swap_module.SwapRun, "swap_cluster", lambda r, c: fleet.swap_cluster(r, c))
    monkeypatch.setattr(swap_module, "Leases", NoLeases)
    monkeypatch.setattr(swap_module, "restore", fleet.restore)
    monkeypatch.setattr(swap_module, "retire_others", fleet.retire_others)
    path = tmp_path / "inventory.yaml"
    path.write_text(INVENTORY + f"defaults:\n  model_store: {example_store.root}\n")
    inventory = load_inventory(path)
    history = History(tmp_path / "history.jsonl")
    seen: list[tuple[str, str]] = []

    async def consume() -> None:
        async with Connections(inventory) as connections:  # never connects: hosts are faked
            options = SwapOptions(to_version="2", retire_after_s=0)
            async for event in swap_module.swap(
                connections, example_store, inventory.apps["shelf"], options, history
            ):
                if isinstance(event, SwapStep):
                    seen.append((event.phase, event.cluster))
                    if seen[-1] == stop_at:
                        asyncio.current_task().cancel()  # type: ignore[union-attr]

    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(consume())
    assert stop_at in seen
    assert back <= set(fleet.restored) <= back | may, fleet.restored
    ended = [e for e in read_history(tmp_path / "history.jsonl") if e["kind"] == "swap_finished"]
    assert ended and all(e["outcome"] == "interrupted" for e in ended), ended
    if not back:
        assert all("the new version stays live" in e["detail"] for e in ended), ended
