"""Blue/green switches under load, behind Serve's proxy and behind Serve's HAProxy ingress.

bench/serving_peers.py shows the HAProxy ingress serving 4x-19x the requests a second of
Serve's proxy. `apply` deploys Serve's proxy anyway; this run shows why: the same switches
(the live version's route moving between two Serve applications, one config PUT each, as
`swap` does) under the same load, on two heads side by side. Run: `make bench-peers`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.haproxy import start_haproxy_head
from bench.report import machine, write_section
from cluster.models.examples import example_data, make_examples
from cluster.models.store import ModelStore
from tests.support.load import run_load
from tests.support.ray_node import RayHead, start_head
from tests.support.serve_env import ServeEnv

SWITCHES = 8  # live 2, 1, 2, ...: each one moves the route
CONCURRENCY = 8
PAUSE_S = 0.5  # after each switch is seen live, before the next


@dataclass(frozen=True)
class Outcome:
    """One head's run: requests, failures by what they got, the switches' times."""

    sent: int
    failed: int
    failures: Counter[str]
    seconds: float
    switch_s: list[float]
    bursts_s: list[float]  # each run of failures (gaps under BURST_GAP_S), first to last


BURST_GAP_S = 0.25


def bursts(times: list[float]) -> list[float]:
    """How long each burst of failures lasted: times closer than BURST_GAP_S are one."""
    out: list[float] = []
    start = prev = None
    for t in sorted(times):
        if prev is None or t - prev > BURST_GAP_S:
            if start is not None and prev is not None:
                out.append(prev - start)
            start = t
        prev = t
    if start is not None and prev is not None:
        out.append(prev - start)
    return out


async def switch_under_load(env: ServeEnv, rows: list[list[float]]) -> Outcome:
    await env.deploy(env.app_spec("cancer", "1", ["1", "2"]))
    await env.wait_live("cancer", "1")
    stop = asyncio.Event()
    t0 = time.perf_counter()
    load = asyncio.create_task(
        run_load(
            f"{env.head.serve_url}/cancer/predict",
            {"instances": rows},
            concurrency=CONCURRENCY,
            stop=stop,
            max_seconds=300,
        )
    )
    switch_s = []
    try:
        await asyncio.sleep(1)
        for i in range(SWITCHES):
            live = "2" if i % 2 == 0 else "1"
            t = time.perf_counter()
            await env.update("cancer", live=live)
            await env.wait_live("cancer", live, timeout=60)
            switch_s.append(time.perf_counter() - t)
            await asyncio.sleep(PAUSE_S)
    finally:
        stop.set()
    result = await load
    kinds = Counter(f.split(":", 1)[0] for f in result.failures)
    elapsed = time.perf_counter() - t0
    return Outcome(result.sent, result.failed, kinds, elapsed, switch_s, bursts(result.failed_at))


def run(head: RayHead, store: ModelStore, state: Path, http_host: str | None) -> Outcome:
    state.mkdir()
    env = ServeEnv(head, store, state, http_host=http_host)
    _, X_test, _, _, _ = example_data()
    return asyncio.run(switch_under_load(env, X_test[:1].tolist()))


def burst_text(spans: list[float]) -> str:
    if not spans:
        return "-"
    ms = sorted(1000 * x for x in spans)
    return f"{len(ms)} bursts of {ms[0]:.0f}-{ms[-1]:.0f} ms"


def render(outcomes: dict[str, Outcome]) -> str:
    lines = [
        "## Blue/green switches under load: Serve's proxy against the HAProxy ingress "
        "(`bench/haproxy_swap.py`)",
        "",
        f"Measured {machine()}. Two heads in one run, one after the other, with the same app (breast-cancer v1 and "
        f"v2, one replica each, monitor on): one behind Serve's proxy (what `apply` deploys), "
        f"one started with Ray Serve's HAProxy ingress as bench/serving_peers.py starts it. "
        f"{SWITCHES} switches each, the live version's route moving from one Serve application "
        f"to the other in one config PUT (as `swap` does), {PAUSE_S:g} s apart once the new "
        f"version answers, under {CONCURRENCY} clients sending one row at a time.",
        "",
        "| ingress | requests | failed | what the failed ones got | failures came in | run | a switch, until it answers |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, o in outcomes.items():
        what = ", ".join(f"{n} x {k}" for k, n in o.failures.most_common()) or "-"
        lines.append(
            f"| {name} | {o.sent:,} | {o.failed:,} ({100 * o.failed / max(o.sent, 1):.1f}%) "
            f"| {what} | {burst_text(o.bursts_s)} | {o.seconds:.1f} s "
            f"| {min(o.switch_s):.1f}-{max(o.switch_s):.1f} s |"
        )
    serve, hap = outcomes.get("Serve's proxy"), outcomes.get("HAProxy")
    if serve and hap:
        lines += [
            "",
            (
                f"**Reading it.** Behind Serve's proxy, {serve.failed} of {serve.sent:,} requests "
                f"failed across the switches; behind the HAProxy ingress, {hap.failed:,} of "
                f"{hap.sent:,} did. "
                + (
                    "The HAProxy ingress regenerates haproxy's routes from each application's "
                    "state as Serve applies the new config; for a moment after each PUT no "
                    "application holds the route, and haproxy answers it from its default "
                    "backend: a 404. Those answers are immediate, so a short gap fails many "
                    "requests. "
                    "That is why `apply` keeps Serve's proxy: the swaps' promise is 0 failed "
                    "requests."
                    if hap.failed
                    else "Neither dropped a request in this run."
                )
            ),
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-hswap-") as tmp_name:
        tmp = Path(tmp_name)
        store = ModelStore(tmp / "models")
        make_examples(store)
        os.environ["PYTHONPATH"] = str(ROOT)  # Ray workers import serving from here
        outcomes: dict[str, Outcome] = {}
        for name, start, host in (
            ("Serve's proxy", start_head, None),
            # 0.0.0.0, as `apply` sets it: haproxy dials a replica on its node at 127.0.0.1
            ("HAProxy", start_haproxy_head, "0.0.0.0"),
        ):
            head = start()
            try:
                outcomes[name] = run(head, store, tmp / f"state-{len(outcomes)}", host)
            finally:
                head.stop()
            o = outcomes[name]
            print(f"{name}: {o.failed} of {o.sent} failed {dict(o.failures)}", flush=True)
    write_section("haproxy_swap", render(outcomes))


if __name__ == "__main__":
    main()
