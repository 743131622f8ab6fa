"""A blue/green swap and a rollback under load: 20,000 requests at concurrency 16 (issue 6).

The local target is provisioned for real (Ray + Serve with token auth), then a load of
20,000 single-row predictions runs while `swap` moves the app from v1 to v2 and `rollback`
moves it back. Records failed requests, p99 before / during / after, the time from "gates
passed" to 100% on the new version, and the rollback time.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import machine, write_section
from cluster.inventory import load_inventory
from cluster.inventory.hostfields import LOCAL_ADDRESS
from cluster.models.examples import make_examples
from cluster.models.store import ModelStore
from cluster.provision.bundle import build_bundle
from cluster.provision.operations import apply_plans, destroy, make_plans
from cluster.rollout.events import SwapFinished, SwapOptions, SwapStep
from cluster.rollout.history import History
from cluster.rollout.manage import change
from cluster.rollout.swap import swap
from cluster.tls.client import client_tls
from cluster.transport import Connections
from tests.support.load import LoadResult, run_load
from tests.support.ports import free_port

TOTAL = int(os.environ.get("BENCH_REQUESTS", "20000"))


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] * 1000 if len(values) >= 100 else float("nan")


async def scenario(inventory_path: Path, store: ModelStore, workdir: Path) -> dict[str, object]:
    inventory = load_inventory(inventory_path)
    app = inventory.apps["cancer"]
    async with Connections(inventory) as conns:
        bundle = build_bundle(workdir / "bundle")
        async for _ in apply_plans(
            conns, await make_plans(conns, store, None, bundle.sha256), bundle
        ):
            pass
        me = inventory.hosts["me"]
        tls = client_tls(inventory, inventory.targets[app.target])  # HTTPS, the default
        scheme = "https" if tls else "http"
        url = f"{scheme}://{me.address}:{me.ray.serve_http}/cancer/predict"
        samples: list[tuple[float, float]] = []
        progress = LoadResult()
        load = asyncio.create_task(
            run_load(
                url,
                {"instances": [[0.5] * 30]},
                concurrency=16,
                total=TOTAL,
                max_seconds=1800,
                result=progress,
                samples=samples,
                client_options=tls.options(me.address) if tls else None,
            )
        )
        while progress.sent < TOTAL * 0.2:  # noqa: ASYNC110 - polling a counter
            await asyncio.sleep(0.2)
        t_start = time.time()
        history = History(workdir / "history.jsonl")
        timings: dict[str, float] = {}
        async for event in swap(
            conns, store, app, SwapOptions(to_version="2", bake_s=0, retire_after_s=0), history
        ):
            if isinstance(event, SwapFinished):
                timings.update(event.timings)
                assert event.outcome == "promoted", event
        while progress.sent < TOTAL * 0.5:  # noqa: ASYNC110 - polling a counter
            await asyncio.sleep(0.2)
        async for event in change(conns, app, "rollback", history, "1", store):
            if isinstance(event, SwapStep):
                timings["rollback_s"] = float(event.data["seconds"])
        t_end = time.time()
        result = await load
        async for _ in destroy(conns, None):
            pass
    before = [lat for t, lat in samples if t < t_start]
    during = [lat for t, lat in samples if t_start <= t <= t_end]
    after = [lat for t, lat in samples if t > t_end]
    return {
        "result": result,
        "p99": (p99(before), p99(during), p99(after)),
        "timings": timings,
        "counts": (len(before), len(during), len(after)),
        "failed": (
            sum(1 for t in result.failed_at if t < t_start),
            sum(1 for t in result.failed_at if t_start <= t <= t_end),
            sum(1 for t in result.failed_at if t > t_end),
        ),
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-swap-") as tmp_name:
        tmp = Path(tmp_name)
        store = ModelStore(tmp / "models")
        make_examples(store)
        remote = Path(tempfile.mkdtemp(prefix="ms-", dir="/tmp"))
        ports = {
            k: free_port(LOCAL_ADDRESS)
            for k in ("port", "dashboard_port", "metrics_port", "serve_port")
        }
        inventory = tmp / "inventory.yaml"
        inventory.write_text(
            f"defaults:\n  model_store: {store.root}\n  remote_dir: {remote}\n"
            "hosts:\n  me:\n    connection: local\n    ray: {"
            + ", ".join(f"{k}: {v}" for k, v in ports.items())
            + "}\n"
            "targets:\n  local: {topology: single, host: me}\n"
            "apps:\n  cancer: {target: local, model: breast-cancer:1, replicas: 2, num_cpus: 0.1}\n"
        )
        try:
            out = asyncio.run(scenario(inventory, store, tmp))
        finally:
            from tests.support.ray_node import stop_processes_under

            stop_processes_under(remote / "ray" / "me")
    result: LoadResult = out["result"]  # type: ignore[assignment]
    before, during, after = out["p99"]  # type: ignore[misc]
    n_before, n_during, n_after = out["counts"]  # type: ignore[misc]
    f_before, f_during, f_after = out["failed"]  # type: ignore[misc]
    timings: dict[str, float] = out["timings"]  # type: ignore[assignment]
    body = (
        "## Swap under load (`bench/swap.py`)\n\n"
        f"Measured {machine()}. The local target provisioned for real (Ray + Serve, token auth); "
        f"{result.sent:,} single-row requests at concurrency 16 while `swap` moves v1 -> v2 (blue/green) "
        "and `rollback` moves it back.\n\n"
        "| | requests | failed | p99 |\n|---|---|---|---|\n"
        f"| before the swap | {n_before:,} | {f_before} | {before:.0f} ms |\n"
        f"| during swap and rollback | {n_during:,} | {f_during} | {during:.0f} ms |\n"
        f"| after | {n_after:,} | {f_after} | {after:.0f} ms |\n"
        f"| **all** | **{result.sent:,}** | **{result.failed}** | |\n\n"
        "| timing | measured | goal |\n|---|---|---|\n"
        f"| gates passed -> 100% on the new version (one PUT, until every node's proxy answers with it) | {timings.get('to_100_s', float('nan')) * 1000:.0f} ms | < 1 s |\n"
        f"| rollback (one PUT: route and weights back, until every proxy answers with v1) | {timings.get('rollback_s', float('nan')) * 1000:.0f} ms | < 1 s |\n\n"
        "The swap runs with `retire_after_s=0`, so v1 is retired at promotion and the rollback "
        "starts it again first; the rollback time is the switch once v1 runs, which is what a "
        "rollback costs while the old replicas are still deployed (30 s after promotion by default).\n"
    )
    write_section("swap", body)
    print(body)


if __name__ == "__main__":
    main()
