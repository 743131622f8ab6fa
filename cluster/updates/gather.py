"""Labelled inputs from every node of an app's target, streamed over SSH.

Each node runs `cluster/remote/labelled_inputs.py` against the app monitor's SQLite file, if
it holds one, and streams its rows in blocks; rows are deduplicated by request id (a
request's label may be joined on more than one node of an edge fleet) and counted per node.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from cluster.errors import MlopsError
from cluster.events import Event
from cluster.inventory import App, Host
from cluster.provision.topology import clusters_of
from cluster.remote import script
from cluster.transport import Connections

SEPARATOR = b"\x1e\n"
READ_TIMEOUT_S = 60.0  # between two blocks of one node: a node this slow is reported


@dataclass(frozen=True)
class LabelledInput:
    """One labelled request: its input (schema order, None where missing) and its label."""

    request_id: str
    ts: float  # when its label arrived
    features: list[Any]
    label: Any


@dataclass(frozen=True)
class GatherProgress(Event):
    """Rows read so far from one node; `done` once it has sent them all."""

    app: str
    node: str
    rows: int
    done: bool = False
    note: str = ""


@dataclass
class Gathered:
    """Every node's rows, deduplicated, oldest label first."""

    rows: list[LabelledInput] = field(default_factory=list)
    per_node: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0


class GatherError(MlopsError):
    """A node's rows could not be read; the message names the node."""


def _targets(connections: Connections, app: App) -> list[tuple[str, Host]]:
    """(cluster id, host) for every node of the app's target."""
    inventory = connections.inventory
    out = []
    for cluster in clusters_of(inventory, inventory.targets[app.target]):
        out += [(cluster.id, host) for host in (cluster.head, *cluster.workers)]
    return out


async def gather(
    connections: Connections, app: App, since_ts: float, concurrency: int = 8
) -> AsyncIterator[GatherProgress | Gathered]:
    """Progress per node as blocks arrive, then one Gathered (GatherError if a node fails)."""
    queue: asyncio.Queue[GatherProgress | BaseException | None] = asyncio.Queue()
    found: dict[str, LabelledInput] = {}
    per_node: dict[str, int] = {}
    duplicates = 0
    limit = asyncio.Semaphore(concurrency)

    async def one(cluster_id: str, host: Host) -> None:
        nonlocal duplicates
        async with limit:
            argv = [host.script_python, "-c", script("labelled_inputs"), host.remote_dir,
                    cluster_id, app.name, repr(since_ts)]  # fmt: skip
            transport = await connections.get(host.name)
            count = 0
            async with transport.stream(argv) as stream:
                while True:
                    block = await asyncio.wait_for(stream.read_until(SEPARATOR), READ_TIMEOUT_S)
                    lines = block[: -len(SEPARATOR)].decode("utf-8").splitlines()
                    last = json.loads(lines[-1]) if lines else {}
                    if "missing" in last:
                        queue.put_nowait(
                            GatherProgress(app.name, host.name, 0, True, last["missing"])
                        )
                        return
                    for line in lines:
                        doc = json.loads(line)
                        if "end" in doc:
                            per_node[host.name] = count
                            queue.put_nowait(GatherProgress(app.name, host.name, count, True))
                            return
                        row = LabelledInput(doc["id"], float(doc["ts"]), doc["x"], doc["y"])
                        count += 1
                        if row.request_id in found:
                            duplicates += 1
                        else:
                            found[row.request_id] = row
                    queue.put_nowait(GatherProgress(app.name, host.name, count))

    async def guarded(cluster_id: str, host: Host) -> None:
        try:
            await one(cluster_id, host)
        except TimeoutError:
            queue.put_nowait(GatherError(f"{host.name}: no labelled rows for {READ_TIMEOUT_S:g} s"))
        except (ValueError, KeyError) as exc:
            queue.put_nowait(GatherError(f"{host.name}: unreadable labelled rows ({exc})"))
        except MlopsError as exc:
            queue.put_nowait(GatherError(f"{host.name}: {exc}"))

    nodes = _targets(connections, app)
    tasks = [asyncio.create_task(guarded(cid, host)) for cid, host in nodes]
    waiter = asyncio.create_task(_close_when_done(tasks, queue))
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        for task in (*tasks, waiter):
            task.cancel()
        await asyncio.gather(*tasks, waiter, return_exceptions=True)
    rows = sorted(found.values(), key=lambda r: r.ts)
    yield Gathered(rows, per_node, duplicates)


async def _close_when_done(tasks: list[asyncio.Task[None]], queue: asyncio.Queue[Any]) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)
    queue.put_nowait(None)
