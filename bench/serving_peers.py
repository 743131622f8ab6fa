"""Ours against the stacks a user would pick instead, one run, same model, rows and machine.

Peers (bench/peers/, each from its own venv, set up as its documentation shows):
  mlserver     Seldon's MLServer, scikit-learn runtime, V2 protocol, 2 parallel workers
  bentoml      BentoML new-style service around the joblib model, 2 workers
  fastapi-w2   FastAPI + onnxruntime under uvicorn, one worker per core (2)
  fastapi-w1   the same, one worker
  ours         this project's serving path on Ray Serve, 2 replicas, monitor on
  ours-haproxy the same applications on a head started with Ray Serve's HAProxy ingress
               (requests go from haproxy straight to the replicas' own HTTP servers, not
               through Serve's Python proxy and an RPC); not what `apply` deploys, as
               its route moves drop requests (bench/haproxy_swap.py)

Every peer's labels for 64 holdout rows must equal ours before anything is timed. Cells:
100- and 500-tree forests x 1 or 64 rows x concurrency 1 or 16, driven by wrk, best of
BENCH_ROUNDS round-robin rounds. Then the 21 bad requests of bench/bad_inputs.py go to each.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx

from bench import bad_inputs
from bench.haproxy import HTTP_HOST, start_haproxy_head
from bench.peer_servers import (
    Mishandled,
    Peer,
    cpu_by_role,
    probe_bad_inputs,
    start_bentoml,
    start_fastapi,
    start_mlserver,
    wait_ready,
)
from bench.report import machine, write_section
from bench.serving import FORESTS, deploy, our_apps, train
from bench.wrk import WrkResult, require_wrk, run_wrk
from cluster.models.examples import example_data
from cluster.models.store import ModelStore
from tests.support.ray_node import RayHead, start_head

SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
ROWS = (1, 64)
CONNS = (1, 16)
OURS = ("ours", "ours-haproxy")
ORDER = (*OURS, "mlserver", "bentoml", "fastapi-w2", "fastapi-w1")
Cell = tuple[str, int, int, int]  # variant, trees, rows, connections


def haproxy_head_with_ours(tmp: Path, store: ModelStore) -> RayHead:
    """A second head (127.0.0.3) serving ours through Serve's HAProxy ingress."""
    head = start_haproxy_head()
    try:
        asyncio.run(deploy(head, our_apps(store, tmp / "state-haproxy"), host=HTTP_HOST))
    except BaseException:
        head.stop()
        raise
    return head


def check_same_labels(peers: list[Peer], rows: list[list[float]]) -> list[int]:
    """Every peer's labels for `rows`, which must all equal the first's (ours)."""
    want: list[int] | None = None
    for peer in peers:
        r = httpx.post(peer.url, content=peer.body(rows), timeout=30,
                       headers={"Content-Type": "application/json"})  # fmt: skip
        r.raise_for_status()
        got = peer.labels(r.json())
        if want is None:
            want = got
        elif got != want:
            diff = sum(a != b for a, b in zip(got, want, strict=True))
            raise SystemExit(f"{peer.name} disagrees with ours on {diff} of {len(rows)} rows")
    assert want is not None
    return want


def main() -> None:
    require_wrk()
    _, X_test, _, _, _ = example_data()
    holdout = X_test[:64].astype(float).tolist()
    results: dict[Cell, WrkResult] = {}
    mishandled: dict[str, list[Mishandled]] = {}
    cpu: dict[Cell, dict[str, float]] = {}  # CPU ms per request, by part, in the best run
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp_name:
        tmp = Path(tmp_name)
        store = ModelStore(tmp / "models")
        pickles = train(tmp, store)
        os.environ["PYTHONPATH"] = str(ROOT)  # Ray workers import serving from here
        head = start_head(num_cpus=2)
        heads = [head]
        try:
            asyncio.run(deploy(head, our_apps(store, tmp / "state")))
            heads.append(haproxy_head_with_ours(tmp, store))
            hap_url = f"http://{HTTP_HOST}:{heads[1].serve_port}"
            for trees in FORESTS:
                onnx = store.root / f"rf{trees}" / "1" / "model.onnx"
                peers = [
                    Peer("ours", f"{head.serve_url}/ours{trees}/predict", bad_inputs.instances,
                         extra={"ray_temp": head.temp_dir}),
                    Peer("ours-haproxy", f"{hap_url}/ours{trees}/predict", bad_inputs.instances,
                         extra={"ray_temp": heads[1].temp_dir}),
                ]  # fmt: skip
                try:
                    peers += [
                        start_mlserver(pickles[trees], tmp, trees),
                        start_bentoml(pickles[trees], tmp, trees),
                        start_fastapi(onnx, tmp, trees, workers=2),
                        start_fastapi(onnx, tmp, trees, workers=1),
                    ]
                    for peer in peers:
                        wait_ready(peer, holdout[:1])
                    check_same_labels(peers, holdout)
                    print(
                        f"rf{trees}: every peer gives ours' labels on 64 holdout rows", flush=True
                    )
                    bodies = {
                        (p.name, rows): p.body(holdout[:rows]) for p in peers for rows in ROWS
                    }
                    for _ in range(ROUNDS):
                        for peer in peers:
                            for rows in ROWS:
                                for conns in CONNS:
                                    _measure(
                                        cpu,
                                        results,
                                        peer,
                                        trees,
                                        rows,
                                        conns,
                                        bodies[(peer.name, rows)],
                                    )
                    if trees == FORESTS[0]:
                        for peer in peers:
                            mishandled[peer.name] = probe_bad_inputs(peer)
                            print(f"{peer.name}: {len(mishandled[peer.name])} of "
                                  f"{len(bad_inputs.BAD)} bad requests mishandled", flush=True)  # fmt: skip
                finally:
                    for peer in peers:
                        peer.stop()
        finally:
            for h in heads:
                h.stop()
    write_section("peers", render(results, mishandled, cpu))


def _measure(
    cpu: dict[Cell, dict[str, float]],
    results: dict[Cell, WrkResult],
    peer: Peer,
    trees: int,
    rows: int,
    conns: int,
    body: str,
) -> None:
    run_wrk(peer.url, body, connections=conns, seconds=1)  # warm-up
    before = cpu_by_role(peer)
    r = run_wrk(peer.url, body, connections=conns, seconds=SECONDS)
    after = cpu_by_role(peer)
    key = (peer.name, trees, rows, conns)
    best = results.get(key)
    if best is None or r.requests_per_s > best.requests_per_s:
        results[key] = r
        cpu[key] = {
            role: 1000 * (after[role] - before.get(role, 0.0)) / max(r.requests, 1)
            for role in after
        }
    print(f"{peer.name:11} rf{trees:<4} rows={rows:<3} c={conns:<3} {r.requests_per_s:9.1f} req/s"
          f"  p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:7.2f} ms  errors {r.errors}  CPU ms/req "
          + ", ".join(f"{k} {v:.2f}" for k, v in cpu.get(key, {}).items()), flush=True)  # fmt: skip


def ratio_text(ours: WrkResult | None, peer: WrkResult | None) -> str:
    """ours / peer; a peer that answered nothing gives a lower bound, never `nan`."""
    if ours is None or peer is None:
        return "-"
    if peer.requests == 0:
        # Under one answer in SECONDS: its rate is below 1/SECONDS.
        return f">= {ours.requests_per_s * SECONDS:.1f}x (it answered nothing in {SECONDS:g} s)"
    return f"{ours.requests_per_s / peer.requests_per_s:.2f}x"


def render(
    results: dict[Cell, WrkResult],
    mishandled: dict[str, list[Mishandled]],
    cpu: dict[Cell, dict[str, float]],
) -> str:
    ours_all = [o for o in OURS if any(k[0] == o for k in results)]
    peers = [p for p in ORDER if p not in OURS and any(k[0] == p for k in results)]
    cells = [(t, r, c) for t in FORESTS for r in ROWS for c in CONNS]
    lines = [
        "## Serving against its peers (`bench/serving_peers.py`, `make bench-peers`)",
        "",
        f"Measured {machine()}. Same breast-cancer forests (100 and 500 trees), same rows "
        f"(1 or 64 per request), same wrk load; {SECONDS:g} s per cell after a 1 s warm-up, best "
        f"of {ROUNDS} round-robin rounds; servers and wrk share this machine's CPUs. Two "
        "replicas or workers wherever the peer has the notion. Each peer runs from its own venv "
        "(bench/peers/*/requirements.txt), set up as its documentation shows; every peer's labels "
        "on 64 holdout rows equal ours before timing. Ours runs with its monitor on and answers "
        "probabilities too; so do the peers (MLServer is asked for predict and predict_proba).",
        "",
        "- **ours**: as `apply` deploys it, behind Ray Serve's HTTP proxy (a Python actor that "
        "hands each request to a replica over Ray's RPC).",
        "- **ours-haproxy**: the same applications on a second head started with Ray Serve's "
        "HAProxy ingress (`RAY_SERVE_ENABLE_HA_PROXY=1`, `RAY_SERVE_THROUGHPUT_OPTIMIZED=1`): "
        "haproxy forwards each request to an HTTP server inside a replica. **Not what `apply` "
        "deploys**: its route moves drop requests (bench/haproxy_swap.py).",
        "",
        "| forest | rows | conc | " + " | ".join([*ours_all, *peers]) + " |",
        "|---|---|---|" + "---|" * (len(ours_all) + len(peers)),
    ]
    for trees, rows, conns in cells:
        row = []
        for name in [*ours_all, *peers]:
            r = results.get((name, trees, rows, conns))
            row.append("-" if r is None else f"{r.requests_per_s:,.0f} req/s, p99 {r.p99_ms:.1f} ms"
                       + (f", {r.errors} errors" if r.errors else ""))  # fmt: skip
        lines.append(f"| {trees} | {rows} | {conns} | " + " | ".join(row) + " |")
    met: dict[str, tuple[bool, bool]] = {}
    for ours_name in ours_all:
        lines += ["", f"{ours_name} / peer, requests per second:", "",
                  "| forest | rows | conc | " + " | ".join(peers) + f" | {ours_name} / best peer |",
                  "|---|---|---|" + "---|" * (len(peers) + 1)]  # fmt: skip
        single_ok, batch_ok = True, True
        for trees, rows, conns in cells:
            ours = results.get((ours_name, trees, rows, conns))
            others = [results.get((p, trees, rows, conns)) for p in peers]
            best = max(
                (o for o in others if o is not None), key=lambda o: o.requests_per_s, default=None
            )
            if ours is not None and best is not None and best.requests:
                ratio = ours.requests_per_s / best.requests_per_s
                single_ok = single_ok and not (rows == 1 and ratio < 1.0)
                batch_ok = batch_ok and not (rows > 1 and ratio < 0.9)
            lines.append(f"| {trees} | {rows} | {conns} | "
                         + " | ".join(ratio_text(ours, o) for o in others)
                         + f" | {ratio_text(ours, best)} |")  # fmt: skip
        met[ours_name] = (single_ok, batch_ok)
    lines += ["", "CPU per request, by part (ms; read from /proc over each cell's best run; ours: "
              "Serve's proxy or HAProxy, the model replicas, the monitor; a peer: all its "
              "processes):", "",
              "| forest | rows | conc | " + " | ".join([*ours_all, *peers]) + " |",
              "|---|---|---|" + "---|" * (len(ours_all) + len(peers))]  # fmt: skip
    for trees, rows, conns in cells:
        row = []
        for name in [*ours_all, *peers]:
            parts = cpu.get((name, trees, rows, conns), {})
            detail = ", ".join(f"{k} {v:.2f}" for k, v in parts.items())
            row.append("-" if not parts else f"{sum(parts.values()):.2f}"
                       + (f" ({detail})" if name in OURS else ""))  # fmt: skip
        lines.append(f"| {trees} | {rows} | {conns} | " + " | ".join(row) + " |")
    lines += ["", f"Bad requests ({len(bad_inputs.BAD)}, bench/bad_inputs.py) mishandled: a 5xx, "
              "a 200 with predictions, or no answer. Ours refuses each with a 4xx naming the problem.", "",
              "| server | mishandled | which |", "|---|---|---|"]  # fmt: skip
    for name in [*ours_all, *peers]:
        if name not in mishandled:
            continue
        bad = mishandled[name]
        which = "; ".join(f"{m.bad}: {m.what}" for m in bad) or "-"
        lines.append(f"| {name} | {len(bad)} of {len(bad_inputs.BAD)} | {which} |")

    def yes(ok: bool) -> str:
        return "yes" if ok else "**no**"

    lines += ["", "| goal | " + " | ".join(ours_all) + " |", "|---|" + "---|" * len(ours_all),
              "| >= every peer in every single-row cell | "
              + " | ".join(yes(met[o][0]) for o in ours_all) + " |",
              "| >= 0.9x the best peer in every 64-row cell | "
              + " | ".join(yes(met[o][1]) for o in ours_all) + " |",
              "| 0 bad requests mishandled | "
              + " | ".join(yes(not mishandled.get(o)) if o in mishandled else "-" for o in ours_all)
              + " |"]  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
