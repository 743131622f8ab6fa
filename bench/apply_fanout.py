"""`apply` to 1 edge host and to 4 edge hosts in the same run (issue 4's benchmark).

Each apply starts from nothing on its hosts: ship code and a model, start a one-node Ray with
token auth, deploy Serve and wait until it answers. The hosts are real sshd servers on
loopback addresses of this 2-core machine, so 4 Ray heads start on the same 2 cores.
Goal: 4 hosts take at most 1.5x one host.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import machine, write_section
from cluster.inventory import load_inventory
from cluster.models.examples import make_examples
from cluster.models.store import ModelStore
from cluster.provision.bundle import build_bundle
from cluster.provision.events import RunFinished
from cluster.provision.operations import apply_plans, destroy, make_plans
from cluster.transport import Connections
from tests.support.ray_node import free_port, stop_processes_under
from tests.support.sshd import ssh_inventory_yaml, sshd_fleet

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))


def inventory_text(fleet, store: Path, remote: Path, hosts: list[str]) -> str:  # type: ignore[no-untyped-def]
    lines = {}
    for h in fleet.hosts:
        ports = {
            k: free_port(h.address)
            for k in ("port", "dashboard_port", "metrics_port", "serve_port")
        }
        lines[h.name] = "    ray: {" + ", ".join(f"{k}: {v}" for k, v in ports.items()) + "}"
    text = ssh_inventory_yaml(fleet, sys.executable, host_lines=lines)
    text = text.replace(
        "defaults:\n",
        f"defaults:\n  remote_dir: {remote}\n  model_store: {store}\n  command_timeout: 600\n",
    )
    return text + (
        f"targets:\n  shops:\n    topology: edge\n    hosts: [{', '.join(hosts)}]\n    rollout: {{batch: {len(hosts)}, max_failures: 0}}\n"
        "apps:\n  shelf:\n    target: shops\n    model: breast-cancer:2\n    num_cpus: 0.1\n"
    )


def machine_cpu_s() -> float:
    """CPU seconds used by everything on this machine so far (user + nice + system)."""
    with open("/proc/stat") as fh:
        fields = fh.readline().split()[1:4]
    return sum(int(f) for f in fields) / os.sysconf("SC_CLK_TCK")


async def timed_apply(path: Path, store: ModelStore, workdir: Path) -> tuple[float, float]:
    """Wall time of the apply, and the CPU the whole machine spent meanwhile."""
    inventory = load_inventory(path)
    bundle = build_bundle(workdir / f"b{time.monotonic_ns()}")
    start, cpu0 = time.perf_counter(), machine_cpu_s()
    async with Connections(inventory) as conns:
        plans = await make_plans(conns, store, None, bundle.sha256)
        async for event in apply_plans(conns, plans, bundle):
            if isinstance(event, RunFinished) and event.failed_hosts:
                raise SystemExit(f"apply failed on {event.failed_hosts}")
    took, cpu = time.perf_counter() - start, machine_cpu_s() - cpu0
    async with Connections(inventory) as conns:
        async for _ in destroy(conns, None):
            pass
    return took, cpu


def main() -> None:
    with (
        tempfile.TemporaryDirectory(prefix="bench-apply-") as tmp_name,
        sshd_fleet(Path(tmp_name) / "sshd", 4, first_octet=31) as fleet,
    ):
        tmp = Path(tmp_name)
        store = ModelStore(tmp / "models")
        make_examples(store)
        remote = Path(tempfile.mkdtemp(prefix="mb-", dir="/tmp"))
        names = [h.name for h in fleet.hosts]
        one, four = tmp / "one.yaml", tmp / "four.yaml"
        one.write_text(inventory_text(fleet, store.root, remote, names[:1]))
        four.write_text(inventory_text(fleet, store.root, remote, names))
        times: dict[int, list[float]] = {1: [], 4: []}
        cpus: dict[int, list[float]] = {1: [], 4: []}
        try:
            for _ in range(ROUNDS):
                for count, path in ((1, one), (4, four)):
                    shutil.rmtree(remote, ignore_errors=True)  # from nothing every time
                    remote.mkdir()
                    took, cpu = asyncio.run(timed_apply(path, store, tmp))
                    times[count].append(took)
                    cpus[count].append(cpu)
                    print(f"apply to {count} host(s): {took:.1f} s", flush=True)
        finally:
            for name in names:
                stop_processes_under(remote / "ray" / name)
            shutil.rmtree(remote, ignore_errors=True)
    t1, t4 = statistics.median(times[1]), statistics.median(times[4])
    c1, c4 = statistics.median(cpus[1]), statistics.median(cpus[4])
    bound = c4 / (os.cpu_count() or 1)
    body = (
        "## `apply` fan-out: 1 edge host vs 4 (`bench/apply_fanout.py`)\n\n"
        f"Measured {machine()}. Each apply starts from an empty remote dir: ship code and a model "
        "(sha256-verified), write the token, start a one-node Ray, deploy Serve, wait for RUNNING. "
        f"Median of {ROUNDS} alternating rounds; real sshd hosts on 127.0.0.31-34.\n\n"
        "| hosts | apply time | ratio | goal |\n|---|---|---|---|\n"
        f"| 1 | {t1:.1f} s | 1.00x | |\n| 4 | {t4:.1f} s | {t4 / t1:.2f}x | <= 1.5x |\n\n"
        f"**Reading it.** Applying to one host made this machine spend {c1:.0f} CPU-seconds; four "
        f"spent {c4:.0f}, nearly all of it in the four hosts' own `ray start` and Serve start-up, "
        f"which here share 2 cores: no apply could finish in less than {bound:.0f} s, and this one "
        f"took {t4:.0f} s. "
        "On real edge hosts each start runs on its own CPU, and the fan-out (all hosts of a "
        "batch at once) is what this benchmark shows the console does.\n"
    )
    write_section("apply_fanout", body)
    print(body)


if __name__ == "__main__":
    main()
