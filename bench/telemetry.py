"""Telemetry collection cost: 200 nodes x 10 replicas at 1 Hz (issue 5's benchmark).

1. Record a real metrics page: a Ray head serving one app with 10 replicas under traffic.
2. Replay it from 200 loopback HTTP servers (another process), counters growing each tick.
3. Run the real Collector against them (200 `connection: local` edge hosts) for 30 s and
   report this process's CPU time per wall second. Goal: under 10% of one core.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import multiprocessing
import os
import re
import resource
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.report import machine, write_section
from cluster.inventory import load_inventory
from cluster.inventory.hostfields import LOCAL_ADDRESS
from cluster.provision.topology import clusters_of
from cluster.telemetry.collector import Collector
from cluster.transport import Connections

NODES = int(os.environ.get("BENCH_NODES", "200"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))


def record_page(workdir: Path) -> str:
    """A /metrics page from a real Serve node with 10 replicas that have served traffic."""
    from cluster.models.examples import make_examples
    from cluster.models.store import ModelStore
    from cluster.serve.api import ServeApi
    from cluster.serve.config import AppSpec, VersionSpec, serve_config
    from tests.support.ray_node import start_head

    store = ModelStore(workdir / "models")
    make_examples(store)
    os.environ["RAY_metrics_report_interval_ms"] = "1000"  # noqa: SIM112 - Ray spells it so
    head = start_head()
    try:
        spec = AppSpec("cancer", "/cancer", str(workdir / "state"), "2",
                       (VersionSpec("2", str(store.root / "breast-cancer" / "2"), 10, 0.0),))  # fmt: skip

        async def deploy_and_load() -> None:
            config = serve_config([spec], head.address, head.serve_port)
            async with ServeApi(head.dashboard_url, head.token) as api:
                await api.deploy(config)
                await api.wait_running([a["name"] for a in config["applications"]], timeout=600)
            async with httpx.AsyncClient(timeout=30) as client:
                body = {"instances": [[0.5] * 30]}
                await asyncio.gather(
                    *(
                        client.post(f"{head.serve_url}/cancer/predict", json=body)
                        for _ in range(300)
                    )
                )

        asyncio.run(deploy_and_load())
        time.sleep(4)
        return httpx.get(f"http://{head.address}:{head.metrics_port}/metrics", timeout=30).text
    finally:
        head.stop()


_NUMBER_AT_END = re.compile(r"^([a-z_]+(?:_total|_bucket|_count|_sum)\{.*\}) ([0-9.e+]+)$", re.M)


def serve_pages(page: str, ports: list[int], ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    """Answer /metrics on every port; counters grow by their recorded value every second."""

    async def main() -> None:
        start = time.monotonic()
        cache: dict[int, bytes] = {}

        def current() -> tuple[bytes, bytes]:
            """The page for this second, plain and gzipped (Ray's exporter, prometheus_client's
            WSGI app, gzips it for clients that accept it, as httpx does)."""
            tick = int(time.monotonic() - start) + 1
            if tick not in cache:
                cache.clear()
                text = _NUMBER_AT_END.sub(lambda m: f"{m[1]} {float(m[2]) * tick}", page)
                cache[tick] = (text.encode(), gzip.compress(text.encode()))
            return cache[tick]

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while request := await reader.readuntil(b"\r\n\r\n"):
                    plain, packed = current()
                    gzipped = b"gzip" in request.lower()
                    body = packed if gzipped else plain
                    encoding = b"Content-Encoding: gzip\r\n" if gzipped else b""
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n%sContent-Length: %d\r\n\r\n"
                        % (encoding, len(body))
                        + body
                    )
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        servers = [await asyncio.start_server(handle, LOCAL_ADDRESS, p) for p in ports]
        ready.set()
        await asyncio.gather(*(s.serve_forever() for s in servers))

    asyncio.run(main())


async def collect(inventory_path: Path) -> tuple[float, float, int, float]:
    """CPU seconds, wall seconds, frames, and the share of node scrapes that were fresh."""
    inventory = load_inventory(inventory_path)
    app = inventory.apps["cancer"]
    clusters = clusters_of(inventory, inventory.targets["fleet"])
    frames = 0
    fresh = total = 0
    async with Connections(inventory) as connections:
        collector = Collector(connections, app, clusters, interval=1.0, window_s=10.0)
        stream = collector.frames()
        for _ in range(3):  # warm-up: connections, first parses
            await anext(stream)
        usage0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        deadline = wall0 + SECONDS
        last = None
        while time.perf_counter() < deadline:
            last = await anext(stream)
            frames += 1
            fresh += sum(1 for s in last.nodes.values() if s == "ok")
            total += len(last.nodes)
        usage1, wall1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        await stream.aclose()
    cpu = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    if last is None or not last.versions.get("2", {}).get("requests_per_s"):
        raise SystemExit("the collector saw no traffic: the figures below would mean nothing")
    return cpu, wall1 - wall0, frames, fresh / max(total, 1)


def distinct_ports(address: str, count: int) -> list[int]:
    """`count` different free ports: all bound at once, so none is handed out twice."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((address, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def main() -> None:

    with tempfile.TemporaryDirectory(prefix="bench-telemetry-") as tmp_name:
        tmp = Path(tmp_name)
        page = record_page(tmp)
        lines = page.count("\n")
        replicas = len(set(re.findall(r'replica="([^"]+)"', page)))
        ports = distinct_ports(LOCAL_ADDRESS, NODES)
        hosts = "".join(
            f"  n{i}:\n    connection: local\n    ray: {{metrics_port: {p}}}\n"
            for i, p in enumerate(ports)
        )
        inventory = tmp / "inventory.yaml"
        inventory.write_text(
            f"hosts:\n{hosts}targets:\n  fleet:\n    topology: edge\n    hosts: [{', '.join(f'n{i}' for i in range(NODES))}]\n"
            "apps:\n  cancer:\n    target: fleet\n    model: breast-cancer:2\n"
        )
        ready = multiprocessing.Event()
        server = multiprocessing.Process(target=serve_pages, args=(page, ports, ready), daemon=True)
        server.start()
        try:
            ready.wait(60)
            cpu, wall, frames, fresh = asyncio.run(collect(inventory))
        finally:
            server.kill()
    share = cpu / wall
    body = (
        "## Telemetry collection cost (`bench/telemetry.py`)\n\n"
        f"Measured {machine()}. A /metrics page recorded from a real Serve node with {replicas} replicas "
        f"after traffic ({lines} lines, {len(page) // 1024} KiB), replayed by {NODES} loopback HTTP servers "
        "in another process with counters growing every second; the real Collector scrapes all of "
        f"them at 1 Hz and aggregates per version over a 10 s window, for {wall:.0f} s ({frames} frames).\n\n"
        "| nodes | replicas/node | interval | collector CPU | goal |\n|---|---|---|---|---|\n"
        f"| {NODES} | {replicas} | 1 s | {share:.1%} of one core | < 10% |\n\n"
        f"{frames} frames in {wall:.0f} s ({frames / wall:.2f} per second, the target is 1); "
        f"{fresh:.0%} of node scrapes were fresh.\n\n"
        + (
            "**The goal is not met.** Each node's page is large (a Ray node with ten replicas "
            f"exports {lines:,} lines, {len(page) // 1024} KiB, of which the collector needs a few "
            "hundred), and one Python process pulls 200 of them a second. Per page, measured "
            "alone: the HTTP GET with gzip (as Ray's exporter serves it) about 2.4 ms, cutting out "
            "the wanted families and reading their samples (prometheus_client parses each series "
            "once, then only values change) about 1.7 ms, where parsing the whole page with "
            "prometheus_client took 33 ms; then the per-version aggregation. One core follows "
            f"about {NODES * frames / wall / max(share, 1e-9):.0f} nodes at 1 Hz this way; the goal "
            "asks for 2,000. Meeting it "
            "needs the cutting, or the aggregation, done on the nodes (a small per-node filter "
            "shipped with the "
            "serving code, streaming only the wanted samples over the SSH connection); that is "
            "not built.\n"
            if share >= 0.10
            else "\n"
        )
    )
    write_section("telemetry", body)
    print(body)
    print(json.dumps({"cpu_s": cpu, "wall_s": wall, "frames": frames}))


if __name__ == "__main__":
    main()
