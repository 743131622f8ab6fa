"""Telemetry collection cost: 200 nodes x 10 replicas at 1 Hz (issue 5's benchmark).

1. Record a real metrics page and monitor answer: a Ray head serving one app with 10 replicas
   under traffic.
2. Replay them from 200 loopback HTTP servers (another process), counters growing each tick.
3. Run the real Collector against 200 `connection: local` edge hosts: each runs the real
   node-side digest (cluster/remote/metrics_digest.py) against its replayed page, as it would
   on the node. Report the collector's CPU time per wall second (goal: under 10% of one core)
   and, apart, what each node's digest costs it.
"""

from __future__ import annotations

import asyncio
import getpass
import gzip
import json
import multiprocessing
import multiprocessing.synchronize
import os
import re
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.report import machine, write_section
from cluster.inventory import load_inventory
from cluster.inventory.hostfields import LOCAL_ADDRESS
from cluster.provision.topology import clusters_of
from cluster.remote.metrics_digest import Digest, render
from cluster.serve.config import monitor_route
from cluster.telemetry.collector import Collector
from cluster.transport import Connections
from tests.support.ports import free_port
from tests.support.ray_node import proc_stats
from tests.support.sshd import SshdFleet, sshd_fleet

NODES = int(os.environ.get("BENCH_NODES", "200"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))
WARM_UP_S = 240.0
Node = tuple[
    str, int, int
]  # address, metrics port, serve port  # 200 digests start (a Python and prometheus_client each) on 2 cores


def record_page(workdir: Path) -> tuple[str, str]:
    """A /metrics page and the app's /monitor answer from a real Serve node with 10 replicas
    that have served traffic. With BENCH_PAGE_CACHE=FILE, recorded once into FILE and read
    from it afterwards (for profiling runs; the report's runs record afresh)."""
    cache = os.environ.get("BENCH_PAGE_CACHE")
    if cache and Path(cache).exists():
        recorded = json.loads(Path(cache).read_text())
        return recorded["page"], recorded["monitor"]
    page, monitor = _record_page(workdir)
    if cache:
        Path(cache).write_text(json.dumps({"page": page, "monitor": monitor}))
    return page, monitor


def _record_page(workdir: Path) -> tuple[str, str]:
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
        page = httpx.get(f"http://{head.address}:{head.metrics_port}/metrics", timeout=30).text
        monitor = httpx.get(f"{head.serve_url}{monitor_route('/cancer')}", timeout=30)
        monitor.raise_for_status()
        return page, monitor.text
    finally:
        head.stop()


_NUMBER_AT_END = re.compile(r"^([a-z_]+(?:_total|_bucket|_count|_sum)\{.*\}) ([0-9.e+]+)$", re.M)


def serve_pages(
    page: str,
    monitor: str,
    nodes: list[Node],
    ready: multiprocessing.synchronize.Event,
) -> None:
    """Per node, on its own address: /metrics on its first port, counters growing by their
    recorded value every second; the monitor's answer on its second."""

    async def main() -> None:
        start = time.monotonic()
        cache: dict[int, tuple[bytes, bytes]] = {}

        def current() -> tuple[bytes, bytes]:
            """The page for this second, plain and gzipped (Ray's exporter, prometheus_client's
            WSGI app, gzips it for clients that accept it, as httpx does)."""
            tick = int(time.monotonic() - start) + 1
            if tick not in cache:
                cache.clear()
                text = _NUMBER_AT_END.sub(lambda m: f"{m[1]} {float(m[2]) * tick}", page)
                cache[tick] = (text.encode(), gzip.compress(text.encode()))
            return cache[tick]

        answer = monitor.encode()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while request := await reader.readuntil(b"\r\n\r\n"):
                    plain, packed = current()
                    gzipped = b"gzip" in request.lower()
                    body = packed if gzipped else plain
                    encoding = b"Content-Encoding: gzip\r\n" if gzipped else b""
                    if b"/metrics" not in request.split(b"\r\n", 1)[0]:
                        body, encoding = answer, b""
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n%sContent-Length: %d\r\n\r\n"
                        % (encoding, len(body))
                        + body
                    )
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        servers = [
            await asyncio.start_server(handle, address, port)
            for address, metrics, serve in nodes
            for port in (metrics, serve)
        ]
        ready.set()
        await asyncio.gather(*(s.serve_forever() for s in servers))

    asyncio.run(main())


def children_cpu() -> float:
    """CPU seconds used so far by this process's children: the node-side digests."""
    me = os.getpid()
    ticks = sum(
        int(f[11]) + int(f[12])  # utime, stime
        for f in proc_stats().values()
        if int(f[1]) == me
    )
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Measured:
    cpu_s: float  # the collector's process
    digests_cpu_s: float  # all node-side digests together
    wall_s: float
    frames: int
    fresh: float  # share of node states that were "ok"


async def collect(inventory_path: Path) -> Measured:
    inventory = load_inventory(inventory_path)
    app = inventory.apps["cancer"]
    clusters = clusters_of(inventory, inventory.targets["fleet"])
    frames = 0
    fresh = total = 0
    async with Connections(inventory) as connections:
        collector = Collector(connections, app, clusters, interval=1.0, window_s=10.0)
        stream = collector.frames()
        warm_until = time.monotonic() + WARM_UP_S
        while True:  # warm-up: every digest started and heard from, the window filling
            frame = await anext(stream)
            if all(s == "ok" for s in frame.nodes.values()) and frame.versions.get("2"):
                break
            if time.monotonic() > warm_until:
                ok = sum(s == "ok" for s in frame.nodes.values())
                raise BenchFailed(f"only {ok} of {NODES} nodes answered after {WARM_UP_S:g}s: "
                                 f"{frame.errors[:3]}")  # fmt: skip
        for _ in range(3):
            await anext(stream)
        usage0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        digests0 = children_cpu()
        deadline = wall0 + SECONDS
        last = None
        while time.perf_counter() < deadline:
            last = await anext(stream)
            frames += 1
            fresh += sum(1 for s in last.nodes.values() if s == "ok")
            total += len(last.nodes)
        usage1, wall1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        digests1 = children_cpu()
        await stream.aclose()
    cpu = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    served = last.versions.get("2") if last is not None else None
    if served is None or not served.requests_per_s:
        raise BenchFailed("the collector saw no traffic: the figures below would mean nothing")
    if not last.monitors:
        raise BenchFailed("the collector got no monitor answer: the figures would leave it out")
    return Measured(cpu, digests1 - digests0, wall1 - wall0, frames, fresh / max(total, 1))


class BenchFailed(Exception):
    """The run cannot give a meaningful figure; says why."""


@contextmanager
def replaying(page: str, monitor: str, nodes: list[Node]) -> Iterator[None]:
    """The replay servers, in another process, for as long as the block runs."""
    ready = multiprocessing.Event()
    server = multiprocessing.Process(
        target=serve_pages, args=(page, monitor, nodes, ready), daemon=True
    )
    server.start()
    try:
        if not ready.wait(60):
            raise BenchFailed("the replay servers did not start within 60 s")
        yield
    finally:
        server.kill()
        server.join()


def measure(inventory: Path) -> Measured:
    try:
        return asyncio.run(collect(inventory))
    except BenchFailed as exc:
        raise SystemExit(f"bench/telemetry.py: {exc}") from None


def inventory_yaml(nodes: list[Node], fleet: SshdFleet | None, remote: Path) -> str:
    """NODES edge hosts: local ones, or (with a fleet) ones reached over SSH, each its own sshd
    on its own loopback address. Their `remote_dir` is `remote`, which gets each cluster's app
    keys file (the collector reads the key to ask the monitor; the replay does not check it)."""
    (remote / "auth").mkdir(parents=True, exist_ok=True)
    keys = json.dumps({"apps": {"cancer": [{"key": "replayed-" * 4, "until": None}]}})
    for i in range(len(nodes)):
        (remote / "auth" / f"fleet.n{i}.keys").write_text(keys)
    hosts = []
    for i, (_, metrics, serve) in enumerate(nodes):
        ray = f"    ray: {{metrics_port: {metrics}, serve_port: {serve}}}\n"
        if fleet is None:
            hosts.append(f"  n{i}:\n    connection: local\n    python: {sys.executable}\n{ray}")
        else:
            sshd = fleet.hosts[i]
            hosts.append(f"  n{i}:\n    address: {sshd.address}\n    port: {sshd.port}\n{ray}")
    defaults = f"defaults:\n  remote_dir: {remote}\n"
    if fleet is not None:
        defaults += (
            f"  user: {getpass.getuser()}\n  key_file: {fleet.client_key}\n"
            f"  known_hosts: {fleet.known_hosts}\n  python: {sys.executable}\n"
        )
    names = ", ".join(f"n{i}" for i in range(len(nodes)))
    return (
        f"{defaults}hosts:\n{''.join(hosts)}"
        # The replay servers speak plain HTTP. TLS changes only the digest's ask on the node
        # (to its own Serve port), not what reaches the collector.
        f"targets:\n  fleet:\n    topology: edge\n    hosts: [{names}]\n    tls: off\n"
        "apps:\n  cancer:\n    target: fleet\n    route: /cancer\n    model: breast-cancer:2\n"
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-telemetry-") as tmp_name:
        tmp = Path(tmp_name)
        page, monitor = record_page(tmp)
        lines = page.count("\n")
        replicas = len(set(re.findall(r'replica="([^"]+)"', page)))
        digest = render(Digest().feed(page))
        local = [
            (LOCAL_ADDRESS, free_port(LOCAL_ADDRESS), free_port(LOCAL_ADDRESS))
            for _ in range(NODES)
        ]
        with replaying(page, monitor, local):
            inventory = tmp / "local.yaml"
            inventory.write_text(inventory_yaml(local, None, tmp / "remote"))
            got = measure(inventory)
        with sshd_fleet(tmp / "sshd", NODES) as fleet:
            remote = [(h.address, free_port(h.address), free_port(h.address)) for h in fleet.hosts]
            with replaying(page, monitor, remote):
                inventory = tmp / "ssh.yaml"
                inventory.write_text(inventory_yaml(remote, fleet, tmp / "remote"))
                over_ssh = measure(inventory)
    share = got.cpu_s / got.wall_s
    ssh_share = over_ssh.cpu_s / over_ssh.wall_s
    per_node_ms = 1000 * got.digests_cpu_s / got.wall_s / NODES
    body = (
        "## Telemetry collection cost (`bench/telemetry.py`)\n\n"
        f"Measured {machine()}. A /metrics page recorded from a real Serve node with {replicas} "
        f"replicas after traffic ({lines:,} lines, {len(page) // 1024} KiB) and its app's /monitor "
        f"answer, replayed by {NODES} loopback HTTP servers in another process, counters growing "
        f"every second. Each of the {NODES} edge hosts runs the real node-side digest "
        "(`cluster/remote/metrics_digest.py`) against its page; the real Collector follows all of "
        f"them at 1 Hz and aggregates per version over a 10 s window, for {SECONDS:g} s. First "
        "with `connection: local` hosts (the digests are local processes), then with every host "
        "reached over SSH (a real sshd per host, each on its own loopback address), "
        "as in production.\n\n"
        "| nodes | replicas/node | interval | hosts | collector CPU | goal | frames/s | fresh |\n"
        "|---|---|---|---|---|---|---|---|\n"
        f"| {NODES} | {replicas} | 1 s | local | {share:.1%} of one core | < 10% | "
        f"{got.frames / got.wall_s:.2f} | {got.fresh:.0%} |\n"
        f"| {NODES} | {replicas} | 1 s | SSH | {ssh_share:.1%} of one core | < 10% | "
        f"{over_ssh.frames / over_ssh.wall_s:.2f} | {over_ssh.fresh:.0%} |\n\n"
        "Why a digest: Ray's exporter ignores Prometheus' `?name[]=` filter (its collector is not "
        f"registered by name), so every scrape of a node moves the whole {len(page) // 1024} KiB "
        "page. Pulling 200 such pages a second into one process cost a full core (one core "
        "followed about 110 nodes). On the node, the digest keeps the samples the figures use and "
        f"sums away the labels they never read: {len(digest):,} bytes a second instead of "
        f"{len(page):,}, for {per_node_ms:.1f} ms of the node's CPU a second "
        f"({per_node_ms / 10:.2f}% of one core; measured on the local hosts). The collector reads "
        "each digest from the node's connection (no HTTP request per node per second: that alone "
        "cost about 1 ms of CPU in httpx) and parses it with prometheus_client, once per distinct "
        "series. Each node's digest also asks its app's monitor and writes the answer beside the "
        "metrics, so the collector makes no HTTP request at all; past 50 clusters a second, the "
        "digests ask every few intervals, in turn.\n\n"
        f"The replay servers, the digests (and sshd) share this machine's {os.cpu_count()} CPUs with the "
        "collector, so its figures are if anything high.\n\n"
        + (
            f"**The goal, as issue 5's benchmark defines it (pages replayed from loopback), is "
            f"{'met' if share < 0.10 else 'not met'}: {share:.1%}.** "
            f"Over SSH the collector used {ssh_share:.1%} "
            f"({'under' if ssh_share < 0.10 else 'over'} the line; runs on this machine vary by about a point"
            "): asyncssh's work per packet and parsing what arrives; the monitors' answers come "
            "inside the digest streams, so no HTTP request is made per node.\n"
        )
    )
    write_section("telemetry", body)
    print(body)
    print(json.dumps({"local": got.__dict__, "ssh": over_ssh.__dict__}))


if __name__ == "__main__":
    main()
