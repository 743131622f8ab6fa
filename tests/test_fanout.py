"""fan_out: bounded concurrency, results as they finish, one failure never stops the rest."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from pathlib import Path

import pytest

from cluster import check
from cluster.check import CheckEvent, HostChecked, HostCheckFailed, HostFacts, check_hosts
from cluster.errors import HostUnreachable
from cluster.fanout import fan_out
from cluster.inventory import Host, Inventory, load_inventory
from cluster.transport import Connections


async def test_bounded_and_isolated() -> None:
    running = peak = 0

    async def work(i: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01 * (i % 3))
        running -= 1
        if i == 4:
            raise ValueError("host 4 broke")
        return i * 10

    results = {item: r async for item, r in fan_out(range(20), work, limit=5)}
    assert peak == 5
    assert len(results) == 20
    assert isinstance(results[4], ValueError)
    assert all(results[i] == i * 10 for i in range(20) if i != 4)


async def test_leaving_early_cancels_the_rest() -> None:
    cancelled: list[int] = []

    async def work(i: int) -> int:
        try:
            await asyncio.sleep(0 if i == 0 else 10)
        except asyncio.CancelledError:
            cancelled.append(i)
            raise
        return i

    async with aclosing(fan_out(range(4), work, limit=4)) as results:
        async for item, _ in results:
            assert item == 0
            break
    assert sorted(cancelled) == [1, 2, 3]


def _inventory(tmp_path: Path, text: str) -> Inventory:
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    return load_inventory(path, env={})


async def _check(inv: Inventory, concurrency: int | None = None) -> dict[str, CheckEvent]:
    async with Connections(inv) as conns:
        return {
            e.host: e
            async for e in check_hosts(conns, list(inv.hosts.values()), concurrency=concurrency)
            if isinstance(e, HostChecked | HostCheckFailed)
        }


async def test_an_unforeseen_error_on_one_host_is_that_hosts_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inv = _inventory(tmp_path, "hosts:\n  a: {connection: local}\n  b: {connection: local}\n")
    real_probe = check.probe

    async def probe(connections: Connections, host: Host) -> HostFacts:
        if host.name == "b":
            raise RuntimeError("boom")
        return await real_probe(connections, host)

    monkeypatch.setattr(check, "probe", probe)
    events = await _check(inv)
    assert isinstance(events["a"], HostChecked)
    failed = events["b"]
    assert isinstance(failed, HostCheckFailed)
    assert (failed.error_type, failed.error) == (
        "RuntimeError",
        "unexpected RuntimeError while probing: boom",
    )


async def test_a_failed_host_is_timed_from_its_own_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inv = _inventory(tmp_path, "hosts:\n  slow: {connection: local}\n  bad: {connection: local}\n")

    async def probe(connections: Connections, host: Host) -> HostFacts:
        if host.name == "bad":
            raise HostUnreachable("bad", "refused")
        await asyncio.sleep(0.5)
        raise HostUnreachable("slow", "timed out")

    monkeypatch.setattr(check, "probe", probe)
    events = await _check(inv, concurrency=1)  # bad waits for slow's turn to end
    assert events["slow"].duration_s >= 0.5
    assert events["bad"].duration_s < 0.25


async def test_the_probe_obeys_command_timeout(tmp_path: Path) -> None:
    slow_python = tmp_path / "python"
    slow_python.write_text("#!/bin/sh\nsleep 5\n")
    slow_python.chmod(0o755)
    inv = _inventory(
        tmp_path,
        f"defaults:\n  command_timeout: 0.5\nhosts:\n  me:\n    connection: local\n"
        f"    python: {slow_python}\n",
    )
    failed = (await _check(inv))["me"]
    assert isinstance(failed, HostCheckFailed) and failed.error_type == "CommandTimeout"
    assert "ran longer than 0.5s and was stopped" in failed.error
    assert failed.duration_s < 3
