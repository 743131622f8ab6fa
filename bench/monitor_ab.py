"""The monitor's cost (issue 15's goal: monitor on at least 0.9x monitor off's req/s in every
forest, rows and concurrency cell), measured so that noise cannot pass for a cost.

One Ray head serves the same forests twice, 2 replicas each: `ours{trees}` with its monitor
(every prediction recorded, drift binned, labels joined) and `ours{trees}-nomon` without.
Off and on take short turns, many per cell (bench/ab_turns.py), so the machine's own drift
does not pass for the monitor. The head's Serve processes' CPU per request (proxy, replicas,
monitor, from /proc) is read around every turn too.

Run: `.venv/bin/python bench/monitor_ab.py` (part of `make bench`); BENCH_SECONDS (one turn)
and BENCH_PAIRS tune it.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ab_turns import Cell, spread, take_turns
from bench.report import machine, write_section
from bench.serving import FORESTS, REPLICAS, bodies, deploy, train
from bench.wrk import WrkResult, require_wrk, run_wrk
from cluster.models.store import ModelStore
from cluster.serve.config import AppSpec, VersionSpec, applications
from tests.support.ray_node import RayHead, proc_stats, processes_under, start_head

SECONDS = float(os.environ.get("BENCH_SECONDS", "2"))  # one turn
PAIRS = int(os.environ.get("BENCH_PAIRS", "10"))  # turns of off and on per cell
CELLS = [(t, r, c) for t in FORESTS for r in (1, 64) for c in (1, 16)]
GOAL = 0.9


def apps(store: ModelStore, state: Path) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for trees in FORESTS:
        for monitor, suffix in ((True, ""), (False, "-nomon")):
            spec = AppSpec(
                f"ours{trees}{suffix}", f"/ours{trees}{suffix}", str(state), "1",
                (VersionSpec("1", str(store.root / f"rf{trees}" / "1"), REPLICAS, 0.0),),
                monitor=monitor,
            )  # fmt: skip
            out += applications(spec)
    return out


def serve_cpu_s(head: RayHead) -> float:
    """CPU seconds so far of the head's Serve processes (proxy, replicas, monitors)."""
    stats = proc_stats()
    total = 0
    for pid in processes_under(head.temp_dir):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if not fh.read().startswith((b"ray::ProxyActor", b"ray::ServeReplica")):
                    continue
        except OSError:
            continue
        if pid in stats:
            total += int(stats[pid][11]) + int(stats[pid][12])
    return total / os.sysconf("SC_CLK_TCK")


def timed(head: RayHead, url: str, body: str, connections: int) -> tuple[WrkResult, float]:
    """One wrk run and the head's Serve CPU milliseconds per request during it."""
    before = serve_cpu_s(head)
    result = run_wrk(url, body, connections=connections, seconds=SECONDS)
    return result, 1000 * (serve_cpu_s(head) - before) / max(1, result.requests)


def main() -> None:
    require_wrk()
    cells = {c: Cell() for c in CELLS}
    with tempfile.TemporaryDirectory(prefix="bench-mon-") as tmp_name:
        tmp = Path(tmp_name)
        store = ModelStore(tmp / "models")
        train(tmp, store)
        body = bodies()
        os.environ["PYTHONPATH"] = str(ROOT)  # Ray workers import serving from here
        head = start_head(num_cpus=2)
        try:
            asyncio.run(deploy(head, apps(store, tmp / "state")))
            for (trees, rows, conns), cell in cells.items():
                on_url = f"{head.serve_url}/ours{trees}/predict"
                off_url = f"{head.serve_url}/ours{trees}-nomon/predict"
                for url in (off_url, on_url):  # warm both
                    run_wrk(url, body[rows], connections=conns, seconds=1)
                off = partial(timed, head, off_url, body[rows], conns)
                take_turns(cell, off, partial(timed, head, on_url, body[rows], conns), PAIRS)
                print(
                    f"rf{trees:<4} rows={rows:<3} c={conns:<3} off against on: {cell.progress()}",
                    flush=True,
                )
        finally:
            head.stop()
    report = render(cells)
    print(report)
    write_section("monitor_ab", report)


def render(cells: dict[tuple[int, int, int], Cell]) -> str:
    lines = [
        "## The monitor's cost, on against off (`bench/monitor_ab.py`)",
        "",
        f"Measured {machine()}. One head serving each forest twice (2 replicas each): with "
        f"its monitor and without. wrk on the same CPUs; per cell a 1 s warm-up of each, then "
        f"{PAIRS} turns of off and on, {SECONDS:g} s each, in off-on, on-off order "
        "(bench/ab_turns.py). Ratio: on's requests over off's, all turns together; single "
        "turns: the lowest and highest on/off of one pair of turns. Serve CPU: the head's "
        "proxy, replicas and monitors, CPU time per request answered, from /proc (medians).",
        "",
        "| forest | rows/req | conc | off req/s | on req/s | on / off | single turns "
        "| off p99 ms | on p99 ms | Serve CPU ms/req off | on |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (trees, rows, conns), c in cells.items():
        lines.append(f"| {trees} | {rows} | {conns} " + c.columns())
    worst_key = min(cells, key=lambda k: cells[k].ratio)
    worst = cells[worst_key].ratio
    low, high = spread(cells)
    errors = sum(c.errors for c in cells.values())
    extra = [c.extra_ms() for c in cells.values()]
    lines += [
        "",
        f"**Goal (monitor on >= {GOAL}x off, every cell): "
        f"{'met' if worst >= GOAL else 'not met'} in this run.** The lowest cell is "
        f"{worst_key[0]} trees, {worst_key[1]} row(s), concurrency {worst_key[2]} at "
        f"{worst:.2f}x. Errors over all runs: {errors}. The goal asks for three consecutive "
        "runs; each run rewrites this section, so the runs are listed below it.",
        "",
        f"How far to trust it: one pair of {SECONDS:g} s turns alone gave on/off between "
        f"{low:.2f} and {high:.2f}, so only the ratio over all turns is worth reading. By CPU, "
        f"the monitor added {min(extra):.2f} to {max(extra):.2f} ms per request across the "
        "cells (medians of on minus off; background threads included, so no finer than the "
        "ratios).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
