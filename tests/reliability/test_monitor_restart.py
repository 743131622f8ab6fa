"""The monitor's replica killed with SIGKILL while clients predict and send labels back: every
label a client had accepted (a 200) is stored once the monitor is back. Clients do what a
503 tells them (retry shortly); Serve may also hold a call until the new monitor takes it.
Predictions wait in the model replicas meanwhile.

Figures go to RELIABILITY.md (printed with -s)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import httpx
import pytest

from tests.support.serve_env import ServeEnv

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
APP = "lbl"
ROW = [0.5] * 30


async def monitor_pid(env: ServeEnv) -> int | None:
    async with env.api() as api:
        details = await api.applications()
    app = details["applications"].get(f"{APP}--monitor") or {}
    replicas = (app.get("deployments") or {}).get("Monitor", {}).get("replicas") or []
    running = [r for r in replicas if r.get("state") == "RUNNING"]
    return int(running[0]["pid"]) if running else None


class Labeller:
    """Predict one row, then label it; a 503 is retried as its message says."""

    def __init__(self, env: ServeEnv) -> None:
        self.env = env
        self.labelled: set[str] = set()
        self.retries = 0
        self.slowest_s = 0.0  # the longest a label took to be accepted, retries included
        self.statuses: dict[int, int] = {}

    async def run(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        while not stop.is_set():
            response = await client.post(f"/{APP}/predict", json={"instances": [ROW]})
            assert response.status_code == 200, response.text
            [request_id] = response.json()["request_ids"]
            body = {"request_id": request_id, "label": 1}
            start = time.monotonic()
            deadline = start + 60
            while True:
                answer = await client.post(f"/{APP}/feedback", json=body, headers=self.env.auth)
                self.statuses[answer.status_code] = self.statuses.get(answer.status_code, 0) + 1
                if answer.status_code == 200:
                    self.labelled.add(request_id)
                    self.slowest_s = max(self.slowest_s, time.monotonic() - start)
                    break
                assert answer.status_code == 503, answer.text
                assert time.monotonic() < deadline, "the monitor never came back"
                self.retries += 1
                await asyncio.sleep(0.2)


async def summary(env: ServeEnv, client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get(f"/{APP}/__monitor", headers=env.auth)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_restarted_monitor_loses_no_label(serve_env: ServeEnv) -> None:
    env = serve_env
    await env.deploy(env.app_spec(APP, "1", ["1"]))
    await env.wait_live(APP, "1")
    labeller = Labeller(env)
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=env.head.serve_url, timeout=30) as client:
        workers = [asyncio.create_task(labeller.run(client, stop)) for _ in range(3)]
        try:
            await asyncio.sleep(3)
            pid = await monitor_pid(env)
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            killed_at = time.monotonic()
            while (new := await monitor_pid(env)) in (None, pid):
                assert time.monotonic() - killed_at < 90, "Serve never restarted the monitor"
                await asyncio.sleep(0.2)
            back_s = time.monotonic() - killed_at
            await asyncio.sleep(3)  # labels go on flowing to the new monitor
        finally:
            stop.set()
            await asyncio.gather(*workers)
        assert new != pid
        sent = len(labeller.labelled)
        counters: dict[str, int] = {}
        stored = -1
        for _ in range(50):  # the replicas flush what they kept every second
            doc = await summary(env, client)
            counters = doc["feedback"]
            stored = doc["versions"]["1"]["labelled_total"]
            if stored + counters.get("waiting", 0) >= sent and not counters.get("waiting"):
                break
            await asyncio.sleep(0.2)
    del env.specs[APP]
    print(
        f"\nRELIABILITY monitor-killed: back in {back_s:.1f}s; labels accepted {sent}, stored "
        f"{stored}; 503s retried {labeller.retries}; slowest label {labeller.slowest_s:.1f}s; "
        f"counters {counters}"
    )
    # The outage was real: clients were told to retry, or Serve held their labels until
    # the new monitor could take them.
    assert labeller.retries > 0 or labeller.slowest_s > 1.0, labeller.slowest_s
    assert stored == sent, (stored, sent, counters)
    lost = {k: counters.get(k, 0) for k in ("unknown", "dropped_predictions", "invalid_labels")}
    assert lost == {"unknown": 0, "dropped_predictions": 0, "invalid_labels": 0}, counters
