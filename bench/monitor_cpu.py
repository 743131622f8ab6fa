"""Where the monitor's cost goes: CPU per request by process, monitor on and off, in turns.

Throughput ratios on a shared 2-core machine swing by tens of percent between consecutive
runs; CPU seconds per request, read from /proc for every process around each wrk run, say
which process pays for what. One cell (BENCH_TREES, BENCH_ROWS, BENCH_CONNECTIONS; default
the costliest for the monitor: 100 trees, 64 rows, 16 connections), BENCH_ROUNDS turns of
8 s each. Prints only: a look, not a report.

    PYTHONPATH=. .venv/bin/python bench/monitor_cpu.py
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path

os.environ.setdefault("BENCH_VARIANTS", "ours,ours-nomon")  # read by bench.serving on import

from bench import serving
from bench.peer_servers import proc_stats
from bench.wrk import require_wrk, run_wrk
from cluster.models.store import ModelStore
from tests.support.ray_node import start_head

TREES = int(os.environ.get("BENCH_TREES", "100"))
ROWS = int(os.environ.get("BENCH_ROWS", "64"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = 8
TICK = os.sysconf("SC_CLK_TCK")
# Ray's workers rename themselves after the method they run; the role is what comes before.
_ROLE = re.compile(r"^(ray::[A-Za-z]+(?::[^:.\s]+)*)")


def cpu_by_pid() -> dict[int, tuple[str, float]]:
    out = {}
    for pid, fields in proc_stats().items():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().split(b"\0")[0].decode("utf-8", "replace")
        except OSError:
            continue
        if not cmd or "wrk" in cmd:
            continue
        match = _ROLE.match(cmd)
        name = match.group(1) if match else Path(cmd.split()[0]).name
        out[pid] = (name, (int(fields[11]) + int(fields[12])) / TICK)
    return out


def machine_cpu() -> float:
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / TICK  # all but idle and iowait


def main() -> None:
    require_wrk()
    serving.FORESTS = (TREES,)
    with tempfile.TemporaryDirectory(prefix="bench-monitor-cpu-") as tmp_name:
        tmp = Path(tmp_name)
        store = ModelStore(tmp / "models")
        pickles = serving.train(tmp, store)
        body = serving.bodies()[ROWS]
        os.environ["PYTHONPATH"] = str(serving.ROOT)
        head = start_head(num_cpus=2)
        try:
            asyncio.run(serving.deploy(head, serving.serve_apps(store, pickles, tmp / "state")))
            for turn in range(ROUNDS):
                for label, prefix in (("on", f"/ours{TREES}"), ("off", f"/ours{TREES}-nomon")):
                    url = f"{head.serve_url}{prefix}/predict"
                    run_wrk(url, body, connections=CONNECTIONS, seconds=1)  # warm-up
                    before, machine_before = cpu_by_pid(), machine_cpu()
                    result = run_wrk(url, body, connections=CONNECTIONS, seconds=SECONDS)
                    after, machine_after = cpu_by_pid(), machine_cpu()
                    requests = result.requests_per_s * SECONDS
                    per_role: dict[str, float] = {}
                    for pid, (name, seconds) in after.items():
                        used = seconds - before.get(pid, (name, seconds))[1]
                        per_role[name] = per_role.get(name, 0.0) + used * 1000 / requests
                    print(f"monitor {label:3} turn {turn}: {result.requests_per_s:6.1f} req/s, "
                          f"machine {(machine_after - machine_before) * 1000 / requests:.2f} ms "
                          "of CPU a request", flush=True)  # fmt: skip
                    for name, ms in sorted(per_role.items(), key=lambda kv: -kv[1])[:6]:
                        print(f"    {ms:6.3f} ms  {name}")
        finally:
            head.stop()


if __name__ == "__main__":
    main()
