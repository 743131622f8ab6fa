"""The monitor's cost (issue 15's goal: monitor on at least 0.9x monitor off's req/s in every
forest, rows and concurrency cell), measured so that noise cannot pass for a cost.

One Ray head serves the same forests twice, 2 replicas each: `ours{trees}` with its monitor
(every prediction recorded, drift binned, labels joined) and `ours{trees}-nomon` without.
Each round of a cell runs off, on, off back to back and compares on with the mean of the two
off runs, so a machine that slows down or speeds up within the round does not pass for the
monitor; the two off runs' own ratio is the noise floor. The head's Serve processes' CPU per
request (proxy, replicas, monitor, from /proc) is read around every run too.

Run: `.venv/bin/python bench/monitor_ab.py` (part of `make bench`); BENCH_SECONDS and
BENCH_ROUNDS tune it.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import machine, write_section
from bench.serving import FORESTS, REPLICAS, bodies, deploy, train
from bench.wrk import WrkResult, require_wrk, run_wrk
from cluster.models.store import ModelStore
from cluster.serve.config import AppSpec, VersionSpec, applications
from tests.support.ray_node import RayHead, proc_stats, processes_under, start_head

SECONDS = float(os.environ.get("BENCH_SECONDS", "4"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CELLS = [(t, r, c) for t in FORESTS for r in (1, 64) for c in (1, 16)]
GOAL = 0.9


@dataclass
class Cell:
    """One cell's rounds: monitor off before, on, off after, and CPU per request of each."""

    off: list[WrkResult] = field(default_factory=list)
    on: list[WrkResult] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)  # on / mean of the round's two off
    floors: list[float] = field(default_factory=list)  # off after / off before
    off_ms: list[float] = field(default_factory=list)  # the head's Serve CPU ms per request
    on_ms: list[float] = field(default_factory=list)


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
            for _ in range(ROUNDS):
                for (trees, rows, conns), cell in cells.items():
                    on_url = f"{head.serve_url}/ours{trees}/predict"
                    off_url = f"{head.serve_url}/ours{trees}-nomon/predict"
                    for url in (off_url, on_url):  # warm both, then off, on, off
                        run_wrk(url, body[rows], connections=conns, seconds=1)
                    before, ms0 = timed(head, off_url, body[rows], conns)
                    on, ms1 = timed(head, on_url, body[rows], conns)
                    after, ms2 = timed(head, off_url, body[rows], conns)
                    base = (before.requests_per_s + after.requests_per_s) / 2
                    cell.off += [before, after]
                    cell.on.append(on)
                    cell.ratios.append(on.requests_per_s / base if base else 0.0)
                    cell.floors.append(
                        after.requests_per_s / before.requests_per_s
                        if before.requests_per_s
                        else 0.0
                    )
                    cell.off_ms += [ms0, ms2]
                    cell.on_ms.append(ms1)
                    print(
                        f"rf{trees:<4} rows={rows:<3} c={conns:<3} off {before.requests_per_s:7.1f} "
                        f"on {on.requests_per_s:7.1f} off {after.requests_per_s:7.1f} "
                        f"ratio {cell.ratios[-1]:.2f}  Serve CPU ms/req {ms0:.2f} {ms1:.2f} {ms2:.2f}",
                        flush=True,
                    )
        finally:
            head.stop()
    report = render(cells)
    print(report)
    write_section("monitor_ab", report)


def render(cells: dict[tuple[int, int, int], Cell]) -> str:
    med = statistics.median
    lines = [
        "## The monitor's cost, on against off (`bench/monitor_ab.py`)",
        "",
        f"Measured {machine()}. One head serving each forest twice (2 replicas each): with "
        f"its monitor and without. wrk on the same CPUs; {SECONDS:g} s per run after a 1 s "
        f"warm-up, {ROUNDS} rounds per cell, each round off, on, off back to back. Ratio: on "
        "over the mean of its round's two off runs; noise floor: the second off run over the "
        "first. Serve CPU: the head's proxy, replicas and monitors, CPU time per request "
        "answered, from /proc.",
        "",
        "| forest | rows/req | conc | off req/s | on req/s | on / off (median, range) "
        "| noise floor (range) | off p99 ms | on p99 ms | Serve CPU ms/req off | on |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (trees, rows, conns), c in cells.items():
        lines.append(
            f"| {trees} | {rows} | {conns} | {med(r.requests_per_s for r in c.off):.1f} "
            f"| {med(r.requests_per_s for r in c.on):.1f} "
            f"| {med(c.ratios):.2f}x ({min(c.ratios):.2f}-{max(c.ratios):.2f}) "
            f"| {min(c.floors):.2f}-{max(c.floors):.2f} "
            f"| {med(r.p99_ms for r in c.off):.1f} | {med(r.p99_ms for r in c.on):.1f} "
            f"| {med(c.off_ms):.2f} | {med(c.on_ms):.2f} |"
        )
    worst_key = min(cells, key=lambda k: med(cells[k].ratios))
    worst = med(cells[worst_key].ratios)
    floors = [f for c in cells.values() for f in c.floors]
    errors = sum(r.errors for c in cells.values() for r in (*c.off, *c.on))
    extra_ms = [med(c.on_ms) - med(c.off_ms) for c in cells.values()]
    lines += [
        "",
        f"**Goal (monitor on >= {GOAL}x off, every cell, median of rounds): "
        f"{'met' if worst >= GOAL else 'not met'} in this run.** The lowest cell is "
        f"{worst_key[0]} trees, {worst_key[1]} row(s), concurrency {worst_key[2]} at "
        f"{worst:.2f}x. Errors over all runs: {errors}. The goal asks for three consecutive "
        "runs; each run rewrites this section, so the runs are listed below it.",
        "",
        f"How far to trust it: the same off run repeated within a round moved by a factor of "
        f"{min(floors):.2f} to {max(floors):.2f}; the medians are what to read. By CPU, the "
        f"monitor added {min(extra_ms):.2f} to {max(extra_ms):.2f} ms per request across the "
        "cells (medians of on minus off; background threads included, so no finer than the "
        "ratios).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
