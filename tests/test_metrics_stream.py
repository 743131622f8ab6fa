"""The node-side metrics digest, run for real through both transports: it streams a digest of
the recorded Ray page every interval, says when its page cannot be fetched, and stops when the
stream is left; a command that ends is reported with its exit status and stderr."""

from __future__ import annotations

import asyncio
import gzip
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from cluster.errors import StreamEnded
from cluster.inventory import load_inventory
from cluster.inventory.hostfields import HostSpec, resolve
from cluster.inventory.yamlread import Loc
from cluster.remote import script
from cluster.remote.metrics_digest import Digest
from cluster.telemetry.collector import DIGEST_END
from cluster.telemetry.prom import parse_index, series
from cluster.transport import Connections, Transport
from cluster.transport.local import LocalTransport

REAL_PAGE = Path(__file__).parent / "data" / "ray_serve_metrics_10_replicas.txt.gz"


@asynccontextmanager
async def page_server(
    served: list[float] | None = None,
) -> AsyncIterator[tuple[str, asyncio.Server]]:
    """Ray's recorded /metrics page on a loopback port, as its exporter serves it; `served`
    gets the time of every request."""
    body = gzip.decompress(REAL_PAGE.read_bytes())

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                if served is not None:
                    served.append(time.monotonic())
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/metrics", server
    finally:
        server.close()


def running(url: str) -> bool:
    pattern = re.escape(url)
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode == 0


async def follow_the_digest(transport: Transport) -> None:
    expected = {
        (name, tuple(sorted(group))): value
        for (name, group), value in Digest()
        .feed(gzip.decompress(REAL_PAGE.read_bytes()).decode())
        .items()
    }
    async with page_server() as (url, server):
        argv = [sys.executable, "-c", script("metrics_digest"), url, "0.3"]
        async with transport.stream(argv) as stream:
            for _ in range(2):  # the page does not change, so neither does the digest
                values = parse_index((await stream.read_until(DIGEST_END)).decode())
                got = {
                    (series(k).name, tuple(sorted(series(k).labels.items()))): v
                    for k, v in values.items()
                }
                assert got == expected
            server.close()
            await server.wait_closed()
            for _ in range(10):  # the established connection may serve one more page
                block = (await stream.read_until(DIGEST_END)).decode()
                if block.startswith("# ERROR"):
                    break
            assert block.startswith(f"# ERROR {url}: ") and "refused" in block
            assert running(url)
        for _ in range(50):  # leaving the stream closed its stdin: the digest ends
            if not running(url):
                break
            await asyncio.sleep(0.1)
        assert not running(url), "the digest outlived its stream"


ENDS_AT_ONCE = "import sys; print('one'); sys.stderr.write('it broke\\n'); sys.exit(4)"
# Its output ends (over SSH: the channel's EOF) well before its exit status exists: the end of
# a stream must still be reported with the status, not before it arrives.
ENDS_LATER = (
    "import os, sys, time; print('one', flush=True); sys.stderr.write('it broke\\n'); "
    "sys.stderr.flush(); os.close(1); os.close(2); time.sleep(0.5); sys.exit(4)"
)


async def an_ending_command_is_reported(transport: Transport) -> None:
    for program in (ENDS_AT_ONCE, ENDS_LATER):
        async with transport.stream([sys.executable, "-c", program]) as stream:
            assert await stream.read_until(b"\n") == b"one\n"
            with pytest.raises(StreamEnded, match=r"ended \(exit 4\): it broke"):
                await stream.read_until(b"\n")


def local() -> LocalTransport:
    return LocalTransport(resolve(HostSpec("me", Loc("t", 1, 1), {"connection": "local"})), 30)


async def test_the_digest_streams_locally() -> None:
    await follow_the_digest(local())
    await an_ending_command_is_reported(local())
    with pytest.raises(StreamEnded, match="not found"):
        async with local().stream(["definitely-not-a-program-xyz"]):
            pass


@pytest.mark.e2e
async def test_the_digest_streams_over_ssh(fleet_inventory) -> None:  # type: ignore[no-untyped-def]
    async with Connections(load_inventory(fleet_inventory())) as connections:
        transport = await connections.get("node1")
        await follow_the_digest(transport)
        await an_ending_command_is_reported(transport)


async def test_digests_of_one_node_share_one_fetch_per_interval() -> None:
    """A console and a swap following the same node: Ray renders the page once a tick."""
    served: list[float] = []
    async with page_server(served) as (url, _):
        argv = [sys.executable, "-c", script("metrics_digest"), url, "0.5"]
        async with local().stream(argv) as first, local().stream(argv) as second:
            for _ in range(6):
                blocks = await asyncio.gather(
                    first.read_until(DIGEST_END), second.read_until(DIGEST_END)
                )
                assert not any(b.startswith(b"# ERROR") for b in blocks), blocks
    ticks = {round(t * 2) for t in served}  # the half-second ticks that saw a request
    assert len(served) <= len(ticks) + 2, f"{len(served)} fetches in {len(ticks)} ticks"


@asynccontextmanager
async def monitor_server(key: list[str]) -> AsyncIterator[str]:
    """A monitor's route on a loopback port: its summary for `Bearer key[0]`, else a 401."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                ok = f"authorization: bearer {key[0]}".encode() in head.lower()
                body = (
                    b'{"versions": {"1": {"last_n": {"n": 7, "accuracy": 0.75}}}, "window_n": 50}'
                    if ok
                    else b'{"error": "no key"}'
                )
                status = b"200 OK" if ok else b"401 Unauthorized"
                writer.write(
                    b"HTTP/1.1 %s\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/app/__monitor"
    finally:
        server.close()


async def test_the_digest_carries_the_monitors_answers_and_takes_a_new_key() -> None:
    """No HTTP request per node per second from the console: the head's digest asks its
    monitor and writes the answer beside the metrics; the key comes on stdin, and a rotated
    one is sent again after the monitor says 401."""
    from cluster.telemetry.monitors import MonitorAnswers, MonitorAsk

    key = ["k3y-one-7f"]
    async with page_server() as (url, _), monitor_server(key) as monitor_url:
        argv = [sys.executable, "-c", script("metrics_digest"), url, "0.3", "--every=1",
                monitor_url]  # fmt: skip
        header = b'["Bearer k3y-one-7f"]\n'
        assert b"k3y-one-7f" not in " ".join(argv).encode()  # the key is never on the command line
        answers = MonitorAnswers(asks=[MonitorAsk.__new__(MonitorAsk)])
        async with local().stream(argv, header) as stream:
            block = (await stream.read_until(DIGEST_END)).decode()
            assert parse_index(block)  # the metrics are all there still
            answers.read(block, time.time())
            summary = answers.latest[0][1]
            assert summary is not None and summary.versions["1"].last_n.accuracy == 0.75
            key[0] = "k3y-two-9c"  # rotated
            for _ in range(5):
                answers.read((await stream.read_until(DIGEST_END)).decode(), time.time())
                if answers.unauthorized:
                    break
            assert answers.unauthorized and answers.latest[0][1] is None
            stream.send(b'["Bearer k3y-two-9c"]\n')
            for _ in range(5):
                answers.read((await stream.read_until(DIGEST_END)).decode(), time.time())
                if answers.latest[0][1] is not None:
                    break
            assert answers.latest[0][1] is not None
