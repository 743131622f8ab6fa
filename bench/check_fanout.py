"""`check` over 1 host and over 30 real sshd hosts, side by side in one run.

Goal (issue 2): 30 hosts take at most 3x the time of one host. Each round opens fresh
connections, exactly like a new `mlops-tui check` run; rounds alternate 1 and 30 hosts
so machine noise hits both alike. Also times the whole CLI process for both.
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import machine, write_section
from cluster.check import CheckFinished, check_hosts
from cluster.inventory import load_inventory
from cluster.transport import Connections
from tests.support.sshd import ssh_inventory_yaml, sshd_fleet

HOSTS = 30
ROUNDS = 7


def machine_cpu_s() -> float:
    """CPU seconds used by everything on this machine so far (user + nice + system)."""
    with open("/proc/stat") as fh:
        fields = fh.readline().split()[1:4]
    return sum(int(f) for f in fields) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def one_check(inventory_path: Path, count: int) -> tuple[float, float, float]:
    """Wall time, this process's CPU and the whole machine's CPU for one check run."""
    inv = load_inventory(inventory_path)
    hosts = list(inv.hosts.values())[:count]
    cpu0, machine0, start = own_cpu_s(), machine_cpu_s(), time.perf_counter()
    async with Connections(inv) as conns:
        async for event in check_hosts(conns, hosts):
            if isinstance(event, CheckFinished) and event.failed:
                raise SystemExit(f"{event.failed} host(s) failed during the benchmark")
    return time.perf_counter() - start, own_cpu_s() - cpu0, machine_cpu_s() - machine0


def cli_check(inventory_path: Path, target: str | None) -> float:
    """One whole `mlops-tui check` process: the named target, or every host without one."""
    start = time.perf_counter()
    only = ["--target", target] if target else []
    argv = [
        sys.executable,
        "-m",
        "console.cli",
        "check",
        "-i",
        str(inventory_path),
        *only,
        "--json",
    ]
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - start


def reading(cores: int, machine_cpu_s: float, bound: float, m1: float, m30: float) -> str:
    """What limited the 30-host check on this machine, computed from what was measured here."""
    text = (
        f"**Reading it.** The 30 test hosts are processes on this machine ({cores} CPUs), not 30 "
        f"machines: a 30-host check made it spend {machine_cpu_s:.2f} s of CPU (sshd handshakes "
        f"and sessions, one Python probe each), so no client could finish in less than "
        f"{bound * 1000:.0f} ms here; this one took {m30 * 1000:.0f} ms ({m30 / bound:.2f}x "
        "that bound). "
    )
    if bound / m30 >= 0.7:
        text += (
            f"So the CPUs, shared by all 30 hosts, set the pace: {m30 / m1:.2f}x one host here "
            "says more about this machine than about the fan-out, which 30 real hosts would run "
            "in parallel. "
        )
    else:
        text += (
            f"The CPUs were not the limit ({machine_cpu_s / m30 / cores:.0%} busy over the check): "
            "the rest is waiting, on connection set-up and on each probe's round trips. "
        )
    return text


def main() -> None:
    with (
        tempfile.TemporaryDirectory(prefix="bench-check-") as tmp,
        sshd_fleet(Path(tmp) / "sshd", HOSTS) as fleet,
    ):
        names = [h.name for h in fleet.hosts]
        targets = f"targets:\n  one:\n    topology: edge\n    hosts: [{names[0]}]\n"
        path = Path(tmp) / "inventory.yaml"
        path.write_text(ssh_inventory_yaml(fleet, sys.executable) + targets)
        asyncio.run(one_check(path, HOSTS))  # warm-up: page cache, sshd first fork
        op1, op30, cli1, cli30 = [], [], [], []
        for _ in range(ROUNDS):
            op1.append(asyncio.run(one_check(path, 1)))
            op30.append(asyncio.run(one_check(path, HOSTS)))
        for _ in range(3):
            cli1.append(cli_check(path, "one"))
            cli30.append(cli_check(path, None))  # all 30 hosts
    m1, m30 = (statistics.median(r[0] for r in runs) for runs in (op1, op30))
    own1, own30 = (statistics.median(r[1] for r in runs) for runs in (op1, op30))
    mach30 = statistics.median(r[2] for r in op30)
    cores = os.cpu_count() or 1
    bound = mach30 / cores
    c1, c30 = statistics.median(cli1), statistics.median(cli30)
    body = (
        "## `check` fan-out: 1 host vs 30 hosts (`bench/check_fanout.py`)\n\n"
        f"Measured {machine()}. Real OpenSSH servers on 127.0.0.11-{10 + HOSTS}; each run opens fresh "
        f"SSH connections and runs the probe (one Python process per host). Median of {ROUNDS} "
        "alternating rounds (operation) and 3 rounds (whole CLI process).\n\n"
        "| what | 1 host | 30 hosts | ratio | goal |\n|---|---|---|---|---|\n"
        f"| check operation (connect + probe) | {m1 * 1000:.0f} ms | {m30 * 1000:.0f} ms | {m30 / m1:.2f}x | <= 3x |\n"
        f"| `mlops-tui check --json` process | {c1 * 1000:.0f} ms | {c30 * 1000:.0f} ms | {c30 / c1:.2f}x | |\n"
        f"| console's own CPU per check | {own1 * 1000:.0f} ms | {own30 * 1000:.0f} ms | {own30 / own1:.2f}x | |\n\n"
        + reading(cores, mach30, bound, m1, m30)
        + f"The console's own share grows from {own1 * 1000:.0f} ms "
        f"to {own30 * 1000:.0f} ms of CPU. Per-host cost was cut to reach this: the probe starts "
        "Python with `-S` (no `site` and its .pth files; it finds site-packages itself) and avoids "
        "`platform`, `json` and `importlib.metadata`: about 14 ms of CPU instead of 36 ms.\n"
    )
    write_section("check_fanout", body)
    print(body)


if __name__ == "__main__":
    main()
