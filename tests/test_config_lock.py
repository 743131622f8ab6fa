"""The Serve config lock: one write of a cluster's config at a time, held by one small process
on the head (an flock), released with that process, whatever ends it. Real processes on this
machine (`connection: local`); the swaps that rely on it run in tests/test_tabular_e2e.py."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from cluster.inventory import load_inventory
from cluster.provision.topology import RayCluster, clusters_of
from cluster.remote import script
from cluster.rollout.serve_state import config_lock
from cluster.transport import Connections


def local_cluster(tmp_path: Path) -> tuple[Path, RayCluster]:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        f"defaults:\n  remote_dir: {tmp_path / 'remote'}\n  python: {sys.executable}\n"
        "hosts:\n  me: {connection: local}\n"
        "targets:\n  local: {topology: single, host: me}\n"
    )
    inventory = load_inventory(path)
    return path, clusters_of(inventory, inventory.targets["local"])[0]


async def test_writes_take_turns(tmp_path: Path) -> None:
    path, cluster = local_cluster(tmp_path)
    inside: list[str] = []
    seen: list[tuple[str, int]] = []
    async with Connections(load_inventory(path)) as connections:

        async def write(name: str) -> None:
            async with config_lock(connections, cluster):
                inside.append(name)
                seen.append((name, len(inside)))  # how many writers are inside now
                await asyncio.sleep(0.2)
                inside.remove(name)

        await asyncio.gather(*(write(n) for n in "abcd"))
    assert sorted(n for n, _ in seen) == list("abcd")
    assert all(count == 1 for _, count in seen), seen  # never two at once


async def test_a_holder_that_dies_releases_it(tmp_path: Path) -> None:
    path, cluster = local_cluster(tmp_path)
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script("config_lock"), str(tmp_path / "remote"), cluster.id, "5",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert holder.stdout is not None
    assert await holder.stdout.readline() == b"started\n"
    assert await holder.stdout.readline() == b"held\n"
    holder.kill()  # a console killed mid-write: its connection, and its process, are gone
    await holder.wait()
    async with Connections(load_inventory(path)) as connections:
        async with asyncio.timeout(5):
            async with config_lock(connections, cluster):
                pass
