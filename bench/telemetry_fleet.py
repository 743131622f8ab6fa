"""Telemetry at fleet scale: the real collector following 1,000 edge nodes over real SSH.

This machine cannot run 1,000 real digests (200 already take most of a core), so the nodes
are simulated, and only they are: one asyncssh server process listens on 1,000 loopback
addresses (127.77.x.y) and answers each session as a node would. The collector under test is
the real one, over the real protocol (asyncssh client, key exchange, public-key auth, host
keys checked against known_hosts, the wrapper's marker line, a stream per node):

- a digest session (the command runs cluster/remote/metrics_digest.py) gets, every second on
  the wall clock, the digest that script writes for a Serve page recorded from a real node
  (11 replicas after traffic), counters growing each second, and every `--every`th second
  the app's recorded /monitor answer as its `# MONITOR 0` line; it ends when stdin closes;
- a keys-file read (the collector reads each cluster's app key once) gets a keyring.

Reported: the collector's CPU per wall second, the share of node-frames that were fresh,
and the collector process's memory.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import math
import multiprocessing
import multiprocessing.synchronize
import os
import random
import re
import resource
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncssh

from bench.report import machine, write_section
from bench.telemetry import _NUMBER_AT_END, BenchFailed, collect, record_page
from cluster.remote.metrics_digest import END, MONITOR, Digest, render

NODES = int(os.environ.get("BENCH_NODES", "1000"))
PORT = int(os.environ.get("BENCH_SSH_PORT", "2299"))


def addresses(n: int) -> list[str]:
    return [f"127.77.{i // 250}.{i % 250 + 1}" for i in range(n)]


def serve_fleet(
    page: str, monitor: str, root: Path, ready: multiprocessing.synchronize.Event
) -> None:
    """The simulated nodes: one asyncssh server process on NODES loopback addresses."""
    host_key = asyncssh.read_private_key(str(root / "host_ed25519"))
    client = asyncssh.read_public_key(str(root / "client_ed25519.pub"))
    answer = monitor.replace("\n", " ").strip()
    keyring = json.dumps({"apps": {"cancer": [{"key": "replayed-" * 4, "until": None}]}})
    digest = Digest()
    blocks: dict[int, str] = {}

    def block(tick: int) -> str:
        """This second's digest, made once for every node (as if each had the same page)."""
        if tick not in blocks:
            blocks.clear()
            text = _NUMBER_AT_END.sub(lambda m: f"{m[1]} {float(m[2]) * tick}", page)
            blocks[tick] = render(digest.feed(text))
        return blocks[tick]

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return True

        def public_key_auth_supported(self) -> bool:
            return True

        def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
            return key.public_data == client.public_data

    async def session(process: asyncssh.SSHServerProcess[str]) -> None:
        command = process.command or ""
        process.stdout.write(f"mlops-tui-pid {os.getpid()}\n")  # the wrapper's marker
        args = shlex.split(command)
        if any(a.endswith("/metrics") for a in args):  # the digest: its first argument
            every_arg = next((a for a in args if a.startswith("--every=")), None)
            every = int(every_arg.split("=")[1]) if every_arg else 0
            if every:
                await process.stdin.readline()  # the monitors' keys
            offset = random.randrange(every) if every else 0
            stdin_closed = asyncio.ensure_future(process.stdin.read())
            try:
                while not stdin_closed.done():
                    now = time.time()
                    tick = int(now)
                    out = block(tick)
                    if every and tick % every == offset:
                        out = out[: -len(END)] + f"{MONITOR}0 {answer}\n" + END
                    process.stdout.write(out)
                    await asyncio.wait([stdin_closed], timeout=math.floor(now) + 1 - now)
            except (asyncssh.Error, OSError):
                pass
            finally:
                stdin_closed.cancel()
            process.exit(0)
        elif any(a.endswith(".keys") for a in args):
            process.stdout.write(keyring)
            process.exit(0)
        else:
            process.stderr.write(f"not simulated: {command[:80]}\n")
            process.exit(127)

    async def main() -> None:
        for address in addresses(NODES):
            await asyncssh.create_server(
                Server, address, PORT, server_host_keys=[host_key], process_factory=session,
                encoding="utf-8", keepalive_interval=0,
            )  # fmt: skip
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def fleet_inventory(root: Path, nodes: list[str]) -> str:
    hosts = "".join(
        f"  n{i}:\n    address: {a}\n    port: {PORT}\n    ray: {{metrics_port: 8080, serve_port: 8000}}\n"
        for i, a in enumerate(nodes)
    )
    names = ", ".join(f"n{i}" for i in range(len(nodes)))
    return (
        f"defaults:\n  user: {getpass.getuser()}\n  key_file: {root / 'client_ed25519'}\n"
        f"  known_hosts: {root / 'known_hosts'}\n  python: python3\n  remote_dir: /sim\n"
        f"  concurrency: 256\nhosts:\n{hosts}"
        # Simulated nodes have no Serve port to speak TLS on; TLS changes only the digest's ask
        # on a node, not what reaches the collector.
        f"targets:\n  fleet:\n    topology: edge\n    hosts: [{names}]\n    tls: off\n"
        "apps:\n  cancer:\n    target: fleet\n    route: /cancer\n    model: breast-cancer:2\n"
    )


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp_name:
        root = Path(tmp_name)
        page, monitor = record_page(root)
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        host_key.write_private_key(str(root / "host_ed25519"))
        client = asyncssh.generate_private_key("ssh-ed25519")
        client.write_private_key(str(root / "client_ed25519"))
        os.chmod(root / "client_ed25519", 0o600)
        client.write_public_key(str(root / "client_ed25519.pub"))
        nodes = addresses(NODES)
        public = host_key.export_public_key().decode().strip()
        (root / "known_hosts").write_text("".join(f"[{a}]:{PORT} {public}\n" for a in nodes))
        inventory = root / "fleet.yaml"
        inventory.write_text(fleet_inventory(root, nodes))
        ready = multiprocessing.Event()
        server = multiprocessing.Process(target=serve_fleet, args=(page, monitor, root, ready))
        server.start()
        try:
            if not ready.wait(120):
                raise SystemExit("the simulated fleet did not start within 120 s")
            rss_before = rss_mb()
            got = asyncio.run(collect(inventory))
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        except BenchFailed as exc:
            raise SystemExit(f"bench/telemetry_fleet.py: {exc}") from None
        finally:
            server.kill()
            server.join()
    share = got.cpu_s / got.wall_s
    replicas = len(set(re.findall(r'replica="([^"]+)"', page)))
    body = (
        "## Telemetry at fleet scale: 1,000 nodes over SSH (`bench/telemetry_fleet.py`)\n\n"
        f"Measured {machine()}. **Simulated:** the {NODES:,} nodes. One asyncssh server process "
        f"listens on {NODES:,} loopback addresses (127.77.x.y) and answers each node's digest "
        "session with what the real digest writes for a Serve page recorded from a real node "
        f"({replicas} replicas, after traffic), counters growing every second, plus the app's "
        "recorded /monitor answer as the digest carries it (every few seconds at this size: "
        "`--every`). **Real:** the collector (`cluster/telemetry/collector.py`, as `tail` and the "
        "console run it), asyncssh client connections with key exchange, public-key auth and "
        "host keys checked, one stream per node, the digests' framing, parsing and aggregation "
        "per version over a 10 s window at 1 Hz.\n\n"
        "| nodes | interval | collector CPU | goal | fresh | goal | collector memory |\n"
        "|---|---|---|---|---|---|---|\n"
        f"| {NODES:,} | 1 s | {share:.1%} of one core | < 25% | {got.fresh:.1%} | >= 99% | "
        f"{peak:.0f} MB at its peak ({rss_before:.0f} MB before connecting) |\n"
    )
    if "BENCH_NODES" not in os.environ:  # a run of another size is a look, not the report
        write_section("telemetry_fleet", body)
    print(body)


if __name__ == "__main__":
    main()
