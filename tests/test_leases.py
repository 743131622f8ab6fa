"""Leases over real sshd: one operator at a time per app; a dead one blocks no one for long."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from cluster.inventory import load_inventory
from cluster.lease import LeaseHeld, Leases, LeaseSpot
from cluster.transport import Connections

pytestmark = pytest.mark.e2e


def inventory_with_root(fleet_inventory, root: Path):  # type: ignore[no-untyped-def]
    path = fleet_inventory()
    text = path.read_text().replace("defaults:\n", f"defaults:\n  remote_dir: {root}\n", 1)
    path.write_text(text)
    return load_inventory(path)


async def test_a_second_operator_is_refused_with_the_holders_name(
    fleet_inventory, tmp_path: Path
) -> None:
    inv = inventory_with_root(fleet_inventory, tmp_path / "root")
    spot = LeaseSpot("cancer", "grid", inv.hosts["node1"])
    lease_file = tmp_path / "root" / "leases" / "cancer.lease"
    async with (
        Connections(inv) as first_conn,
        Connections(inv) as second_conn,
        Leases(first_conn, [spot], "swap cancer --to 2") as first,
    ):
        held = json.loads(lease_file.read_text())
        assert held["command"] == "swap cancer --to 2" and held["id"] == first.id
        assert lease_file.stat().st_mode & 0o777 == 0o600
        with pytest.raises(LeaseHeld) as info:
            async with Leases(second_conn, [spot], "apply"):
                pytest.fail("two operators held one lease")
        message = str(info.value)
        assert "cancer on grid is held by" in message and "running `swap cancer --to 2`" in message
        assert "--force" in message
        assert json.loads(lease_file.read_text())["id"] == first.id  # untouched
        # --force takes it over and says whose it was.
        async with Leases(second_conn, [spot], "rollback cancer", force=True) as second:
            assert second.taken_over and "swap cancer --to 2" in second.taken_over[0][1]
            assert "taken with --force" in second.taken_over[0][1]
        assert not lease_file.exists()  # the second gave it back
        # The first's release leaves the file alone: it was no longer its lease.
    assert not lease_file.exists()


async def test_an_expired_lease_is_taken_over_and_the_holder_named(
    fleet_inventory, tmp_path: Path
) -> None:
    inv = inventory_with_root(fleet_inventory, tmp_path / "root")
    spot = LeaseSpot("cancer", "grid", inv.hosts["node2"])
    async with Connections(inv) as conn:
        dead = Leases(conn, [spot], "swap cancer --to 3", ttl_s=0.5)
        await dead.__aenter__()  # an operator that dies without giving the lease back
        assert dead._renewer is not None
        dead._renewer.cancel()
        await asyncio.sleep(1.0)
        async with Leases(conn, [spot], "rollback cancer") as next_one:
            assert "expired" in next_one.taken_over[0][1]
            assert "swap cancer --to 3" in next_one.taken_over[0][1]


async def test_a_lease_whose_process_was_killed_on_this_machine_is_taken_over(
    fleet_inventory, tmp_path: Path
) -> None:
    """SIGKILL leaves the lease behind for its TTL; its process is gone from this machine, so
    the next operator here takes it over at once and says so. On another machine, a pid
    says nothing: that lease is refused."""
    inv = inventory_with_root(fleet_inventory, tmp_path / "root")
    spot = LeaseSpot("cancer", "grid", inv.hosts["node1"])
    gone = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True)  # noqa: ASYNC221 - a pid that has ended
    dead_pid = int(gone.stdout)
    async with Connections(inv) as conn:
        killed = Leases(conn, [spot], "swap cancer --to 2")
        killed.holder["pid"] = dead_pid
        await killed.__aenter__()
        assert killed._renewer is not None
        killed._renewer.cancel()
        elsewhere = Leases(conn, [LeaseSpot("other", "grid", inv.hosts["node1"])], "swap other")
        elsewhere.holder.update(pid=dead_pid, machine="another-machine")
        await elsewhere.__aenter__()
        assert elsewhere._renewer is not None
        elsewhere._renewer.cancel()
        async with Leases(conn, [spot], "rollback cancer") as next_one:
            [(_, said)] = next_one.taken_over
            assert (
                "swap cancer --to 2" in said
                and f"its process {dead_pid} on this machine is gone" in said
            )
        with pytest.raises(LeaseHeld, match="other on grid is held by"):
            async with Leases(
                conn, [LeaseSpot("other", "grid", inv.hosts["node1"])], "abort other"
            ):
                pytest.fail("a lease of another machine was taken over by a pid")


async def test_all_leases_or_none(fleet_inventory, tmp_path: Path) -> None:
    inv = inventory_with_root(fleet_inventory, tmp_path / "root")
    a = LeaseSpot("tools", "shops.node1", inv.hosts["node1"])
    b = LeaseSpot("shelf", "shops.node3", inv.hosts["node3"])
    async with Connections(inv) as conn, Leases(conn, [b], "swap shelf --to 2"):
        with pytest.raises(LeaseHeld, match=r"shelf on shops\.node3 is held by"):
            async with Leases(conn, [a, b], "apply"):
                pytest.fail("a lease was held twice")
        # node1's lease, taken before node3's was refused, was given back.
        async with Leases(conn, [a], "abort tools"):
            pass


async def test_progress_passes_at_once_and_the_outcome_after_the_release() -> None:
    from cluster.lease import holding

    log: list[str] = []

    class FakeLeases:
        taken_over: list[tuple[object, str]] = []

        async def __aenter__(self) -> FakeLeases:
            log.append("taken")
            return self

        async def __aexit__(self, *exc: object) -> None:
            log.append("given back")

    async def events():  # type: ignore[no-untyped-def]
        yield "step 1"
        yield "step 2"
        yield "outcome"

    stream = holding(FakeLeases(), lambda s, t: t, events(), lambda e: e == "outcome")  # type: ignore[arg-type]
    async for event in stream:
        log.append(event)
        if event == "outcome":
            break  # a reader that stops at the outcome
    assert log == ["taken", "step 1", "step 2", "given back", "outcome"]


async def test_the_phase_an_operation_writes_is_what_the_next_operator_reads(
    fleet_inventory, tmp_path: Path
) -> None:
    from cluster.provision.observe import observe_host

    inv = inventory_with_root(fleet_inventory, tmp_path / "root")
    spot = LeaseSpot("cancer", "grid", inv.hosts["node1"])
    async with Connections(inv) as conn:
        async with Leases(conn, [spot], "swap cancer --to 2") as held:
            held.mark("another-cluster", "ignored: this operation holds nothing there")
            held.mark("grid", "deploy: version 2 running beside 1")
            held.mark("grid", "shift: 10% of traffic on 2")  # the latest one counts
            assert held._marker is not None
            await held._marker
            state = await observe_host(conn, inv.hosts["node1"])
            lease = state.leases["cancer"]
            assert lease.phase == "shift: 10% of traffic on 2" and lease.pid == held.holder["pid"]
            assert lease.command == "swap cancer --to 2" and not lease.gone
            record = json.loads((tmp_path / "root" / "leases" / "cancer.lease").read_text())
            assert record["id"] == held.id  # on the head; observe never hands it out
        assert "cancer" not in (await observe_host(conn, inv.hosts["node1"])).leases
