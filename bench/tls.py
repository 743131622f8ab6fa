"""The cost of TLS on the Serve port (issue 17's goal: HTTPS at least 0.8x HTTP's req/s at
concurrency 16, connections kept alive), measured so that noise cannot pass for a cost.

Two Ray heads with the same applications (ours, monitor on, 2 replicas, 100- and 500-tree
forests): head A serves HTTP, head B HTTPS as `apply` sets it up (a certificate from a CA made
here, Serve terminating TLS, our proxy hook). Each round of a cell runs A, B, A back to back
and compares B with the mean of the two A runs, so a machine that slows down or speeds up
within the round does not pass for TLS; the two A runs' own ratio is the noise floor. The
proxy's CPU per request (from /proc, for the proxy process of each head) says what TLS costs
where it is terminated, whatever the machine's other load does to req/s.

Run: `make bench` (or `.venv/bin/python bench/tls.py`); BENCH_SECONDS and BENCH_ROUNDS tune it.
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
from bench.serving import FORESTS, TLS_ADDRESS, bodies, deploy, our_apps, start_https_head, train
from bench.wrk import WrkResult, require_wrk, run_wrk
from cluster.models.store import ModelStore
from tests.support.ray_node import RayHead, processes_under, start_head

SECONDS = float(os.environ.get("BENCH_SECONDS", "6"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
# (forest, rows, connections): every concurrency-16 cell (the goal's), and one connection.
CELLS = [(t, r, 16) for t in FORESTS for r in (1, 64)] + [(100, 1, 1)]
GOAL = 0.8


@dataclass
class Cell:
    """One cell's rounds: HTTP before, HTTPS, HTTP after, and each proxy's CPU per request."""

    http: list[WrkResult] = field(default_factory=list)
    https: list[WrkResult] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)  # HTTPS / mean of the round's two HTTP
    floors: list[float] = field(default_factory=list)  # HTTP after / HTTP before
    http_ms: list[float] = field(default_factory=list)  # proxy CPU ms per request
    https_ms: list[float] = field(default_factory=list)


def proxy_pid(head: RayHead) -> int:
    for pid in processes_under(head.temp_dir):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if fh.read().startswith(b"ray::ProxyActor"):
                    return pid
        except OSError:
            continue
    raise RuntimeError(f"no Serve proxy under {head.temp_dir}")


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(url: str, body: str, connections: int, pid: int) -> tuple[WrkResult, float]:
    """One wrk run and the proxy's CPU milliseconds per request during it."""
    before = cpu_s(pid)
    result = run_wrk(url, body, connections=connections, seconds=SECONDS)
    used = cpu_s(pid) - before
    return result, 1000 * used / max(1, result.requests)


def main() -> None:
    require_wrk()
    cells = {c: Cell() for c in CELLS}
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as tmp_name:
        tmp = Path(tmp_name)
        store = ModelStore(tmp / "models")
        train(tmp, store)
        body = bodies()
        os.environ["PYTHONPATH"] = str(ROOT)
        http = start_head(num_cpus=2)
        https = None
        try:
            asyncio.run(deploy(http, our_apps(store, tmp / "state-http")))
            https = start_https_head(tmp, store)  # the same apps, over HTTPS
            pids = (proxy_pid(http), proxy_pid(https))
            for _ in range(ROUNDS):
                for (trees, rows, conns), cell in cells.items():
                    a = f"{http.serve_url}/ours{trees}/predict"
                    b = f"https://{TLS_ADDRESS}:{https.serve_port}/ours{trees}/predict"
                    for url in (a, b):  # warm both, then A, B, A
                        run_wrk(url, body[rows], connections=conns, seconds=1)
                    before, ms0 = timed(a, body[rows], conns, pids[0])
                    secure, ms1 = timed(b, body[rows], conns, pids[1])
                    after, ms2 = timed(a, body[rows], conns, pids[0])
                    base = (before.requests_per_s + after.requests_per_s) / 2
                    cell.http += [before, after]
                    cell.https.append(secure)
                    cell.ratios.append(secure.requests_per_s / base if base else 0.0)
                    cell.floors.append(
                        after.requests_per_s / before.requests_per_s
                        if before.requests_per_s
                        else 0.0
                    )
                    cell.http_ms += [ms0, ms2]
                    cell.https_ms.append(ms1)
                    print(
                        f"rf{trees:<4} rows={rows:<3} c={conns:<3} http {before.requests_per_s:7.1f} "
                        f"https {secure.requests_per_s:7.1f} http {after.requests_per_s:7.1f} "
                        f"ratio {cell.ratios[-1]:.2f}  proxy ms/req {ms0:.2f} {ms1:.2f} {ms2:.2f}",
                        flush=True,
                    )
        finally:
            if https is not None:
                https.stop()
            http.stop()
    report = render(cells)
    print(report)
    write_section("tls", report)


def render(cells: dict[tuple[int, int, int], Cell]) -> str:
    med = statistics.median
    lines = [
        "## The cost of TLS (`bench/tls.py`)",
        "",
        f"Measured {machine()}. wrk on the same CPUs as both heads; {SECONDS:g} s per run after "
        f"a 1 s warm-up, {ROUNDS} rounds per cell, each round HTTP, HTTPS, HTTP back to back. "
        "Two heads with the same applications (ours, monitor on, 2 replicas): A serves HTTP, "
        "B HTTPS as `apply` sets it up. Ratio: HTTPS over the mean of its round's two HTTP "
        "runs; noise floor: the second HTTP run over the first. Proxy CPU: the Serve proxy "
        "process's CPU time per request answered, from /proc.",
        "",
        "| forest | rows/req | conc | HTTP req/s | HTTPS req/s | HTTPS / HTTP (median, range) "
        "| noise floor (range) | HTTP p99 ms | HTTPS p99 ms | proxy CPU ms/req HTTP | HTTPS |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (trees, rows, conns), c in cells.items():
        lines.append(
            f"| {trees} | {rows} | {conns} | {med(r.requests_per_s for r in c.http):.1f} "
            f"| {med(r.requests_per_s for r in c.https):.1f} "
            f"| {med(c.ratios):.2f}x ({min(c.ratios):.2f}-{max(c.ratios):.2f}) "
            f"| {min(c.floors):.2f}-{max(c.floors):.2f} "
            f"| {med(r.p99_ms for r in c.http):.1f} | {med(r.p99_ms for r in c.https):.1f} "
            f"| {med(c.http_ms):.2f} | {med(c.https_ms):.2f} |"
        )
    c16 = {k: c for k, c in cells.items() if k[2] == 16}
    worst_key = min(c16, key=lambda k: med(c16[k].ratios))
    worst = med(c16[worst_key].ratios)
    floors = [f for c in cells.values() for f in c.floors]
    below = [k for k, c in c16.items() if max(c.ratios) < 1]  # under 1 in every round
    met = "met" if worst >= GOAL else "not met"
    errors = sum(r.errors for c in cells.values() for r in (*c.http, *c.https))
    lines += [
        "",
        f"**Goal (HTTPS >= {GOAL}x HTTP at concurrency 16, every cell, median of rounds): {met}.** "
        f"The lowest concurrency-16 cell is {worst_key[0]} trees, {worst_key[1]} row(s) at "
        f"{worst:.2f}x. Errors over all runs: {errors}.",
        "",
        f"How far to trust it: the same HTTP run repeated within a round moved by a factor of "
        f"{min(floors):.2f} to {max(floors):.2f}, so a single ratio says little; the medians "
        "do. "
        + (
            "Cells where HTTPS came out below HTTP in every round: "
            + ", ".join(f"{t} trees x {r} row(s)" for t, r, _ in below)
            + " (three rounds are too few to call that a cost when the noise floor is as wide). "
            if below
            else "No cell had HTTPS below HTTP in every round. "
        )
        + "The proxy's CPU per request includes its background threads (Serve's router loop, "
        "metrics), so it falls as req/s rises and is no finer than the ratios; wrk's own TLS "
        "runs on the same two CPUs, which a client on another machine would not.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
