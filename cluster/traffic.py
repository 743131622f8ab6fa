"""A traffic generator with delayed ground truth: what the demo (and a smoke check) sends.

It posts labelled rows (a model version's holdout) to an app's `/predict` at a steady rate and,
a little later, posts each answer's true label to `/feedback`, as a production system would once
the outcome is known. Every response is counted, so "zero failed requests" is a measurement.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import httpx

from cluster.keys import bearer

TIMEOUT_S = 10.0
FEEDBACK_EVERY_S = 0.5


@dataclass
class TrafficStats:
    """What was sent and how it went, per version that answered."""

    sent: int = 0
    answered: int = 0
    failed: int = 0
    labels_sent: int = 0
    labels_lost: int = 0  # /feedback refused or unreachable: those labels never arrived
    versions: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # the first few reasons

    def fail(self, reason: str) -> None:
        self.failed += 1
        if len(self.failures) < 5:
            self.failures.append(reason)


@dataclass
class LabelledTraffic:
    """`rate` single-row predictions a second to `base_url` (the app's route), each labelled
    `label_delay` seconds after its answer."""

    base_url: str
    rows: list[Any]  # lists of numbers, or records ({column: value})
    labels: list[Any]
    rate: float = 20.0
    label_delay: float = 1.0
    stats: TrafficStats = field(default_factory=TrafficStats)
    key: str | None = field(default=None, repr=False)  # the app's key: labels need it
    # The drift switch: after `drift_after_s`, these rows and labels instead (the world changed).
    drifted: tuple[list[Any], list[Any]] | None = None
    drift_after_s: float = 0.0
    # More httpx.AsyncClient options: HTTPS verification (cluster/tls/client.py).
    client_options: dict[str, Any] = field(default_factory=dict)

    async def run(self, stop: asyncio.Event) -> TrafficStats:
        """Until `stop` is set; the labels still due are sent before returning."""
        due: deque[tuple[float, str, Any]] = deque()
        loop = asyncio.get_running_loop()
        limits = httpx.Limits(max_connections=8)
        headers = bearer(self.key) if self.key else None
        async with httpx.AsyncClient(
            base_url=self.base_url,
            timeout=TIMEOUT_S,
            limits=limits,
            headers=headers,
            **self.client_options,
        ) as client:
            in_flight: set[asyncio.Task[None]] = set()
            answered_all = asyncio.Event()  # no prediction in flight can add a label any more
            feeder = asyncio.create_task(self._feed(client, due, answered_all))
            pairs = itertools.cycle(zip(self.rows, self.labels, strict=True))
            next_at = loop.time()
            drift_at = next_at + self.drift_after_s if self.drifted else None
            while not stop.is_set():
                if drift_at is not None and loop.time() >= drift_at and self.drifted:
                    pairs = itertools.cycle(zip(*self.drifted, strict=True))
                    drift_at = None
                row, label = next(pairs)
                task = asyncio.create_task(self._predict(client, row, label, due))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                next_at += 1.0 / self.rate
                try:
                    await asyncio.wait_for(stop.wait(), max(0.0, next_at - loop.time()))
                except TimeoutError:
                    continue
            await asyncio.gather(*in_flight, return_exceptions=True)
            answered_all.set()
            await feeder
        return self.stats

    async def _predict(
        self,
        client: httpx.AsyncClient,
        row: list[float],
        label: Any,
        due: deque[tuple[float, str, Any]],
    ) -> None:
        self.stats.sent += 1
        try:
            response = await client.post("/predict", json={"instances": [row]})
        except httpx.HTTPError as exc:
            self.stats.fail(f"{type(exc).__name__}: {exc}")
            return
        if response.status_code != 200:
            self.stats.fail(f"HTTP {response.status_code}: {response.text[:200]}")
            return
        try:
            body = response.json()
            request_id = str(body["request_ids"][0])
            version = str(body["version"])
        except (ValueError, KeyError, IndexError, TypeError):
            self.stats.fail(f"an answer without a version or request id: {response.text[:200]}")
            return
        self.stats.answered += 1
        self.stats.versions[version] += 1
        due.append((time.monotonic() + self.label_delay, request_id, label))

    async def _feed(
        self, client: httpx.AsyncClient, due: deque[tuple[float, str, Any]], last: asyncio.Event
    ) -> None:
        """Labels whose delay has passed, in batches; all of them once `last` is set."""
        while True:
            stopping = last.is_set()
            now = time.monotonic()
            batch = []
            while due and (stopping or due[0][0] <= now):
                _, request_id, label = due.popleft()
                batch.append({"request_id": request_id, "label": label})
            if batch:
                try:
                    response = await client.post("/feedback", json=batch)
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    self.stats.labels_sent += len(batch)
                else:
                    self.stats.labels_lost += len(batch)
            if stopping and not due:
                return
            await asyncio.sleep(FEEDBACK_EVERY_S)
