"""The monitor as a Serve deployment: one replica per app, pinned to the head node where its
SQLite file lives, fed in batches by the model replicas and asked for summaries by the console."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

from ray import serve
from ray.util import metrics
from starlette.requests import Request
from starlette.responses import Response

from serving.auth import KeyCheck, Unauthorized, unauthorized
from serving.monitor.records import PredictionBlock, PredictionRecord, from_records
from serving.monitor.tracker import AccuracyTracker, MonitorSettings

log = logging.getLogger("ray.serve")
_SCORES = ("accuracy", "precision", "recall", "f1", "roc_auc", "mse", "mae")
SUMMARY_CACHE_S = 1.0  # GET on the route answers from a summary at most this old


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0}, max_ongoing_requests=1000)
class Monitor:
    """Joins predictions with labels for every version of one app."""

    # Serve awaits async constructors; this one starts the gauge exporter on the replica's loop.
    async def __init__(  # type: ignore[misc]
        self,
        app: str,
        state_dir: str,
        settings: dict[str, Any] | None = None,
        keys_file: str | None = None,
    ) -> None:
        self.app = app
        self._keys = KeyCheck(keys_file, app) if keys_file else None
        self._cached: tuple[float, str] | None = None
        self.tracker = AccuracyTracker(
            Path(state_dir) / f"{app}.sqlite", MonitorSettings(**(settings or {}))
        )
        self._gauge = metrics.Gauge(
            "mlops_model_score",
            description="Model quality over the last-N labelled predictions, per version",
            tag_keys=("app", "version", "metric"),
        )
        self._labelled = metrics.Gauge(
            "mlops_labelled_predictions",
            description="Labelled predictions in the window",
            tag_keys=("app", "version"),
        )
        self._last_export = 0.0
        # Gauges are refreshed on a timer too, so they stay current when no request comes.
        self._exporter = asyncio.get_running_loop().create_task(self._export_forever())
        log.info("monitor for %s: %s", app, self.tracker.store.path)

    # Every method is async on purpose: Serve runs sync methods in a thread pool
    # (RAY_SERVE_RUN_SYNC_IN_THREADPOOL), and the tracker's one SQLite connection must not be
    # used by two threads at once. Async methods all run on the replica's event loop; the
    # tracker's lock covers anything else.
    async def register(
        self,
        version: str,
        task: str,
        classes: list[Any] | None,
        reference: dict[str, Any] | None = None,
    ) -> None:
        self.tracker.register(version, task, classes, reference)

    async def record(
        self,
        blocks: list[PredictionBlock],
        bins: dict[str, list[list[int]]] | None = None,
        dropped: int = 0,
    ) -> None:
        """Blocks of prediction records, live feature-bin counts per version for drift, and how many
        records the replica had to drop while this monitor was away (counted, shown)."""
        if blocks and isinstance(blocks[0], tuple):  # a replica still running older code
            blocks = from_records([PredictionRecord(*row) for row in blocks])
        for block in blocks:
            self.tracker.record(block)
        if dropped:
            self.tracker.count({"dropped_predictions": dropped})
        for version, counts in (bins or {}).items():
            self.tracker.add_bins(version, counts)
        self._export()

    async def feedback(self, items: list[tuple[str, Any]]) -> dict[str, int]:
        result = self.tracker.feedback(items)
        self._export()
        return result

    async def summary(self) -> dict[str, Any]:
        return self.tracker.summary()

    async def __call__(self, request: Request) -> Response:
        """GET on the monitor's own route (with the app's key): the summary, for the console's
        collector; callers within SUMMARY_CACHE_S share one."""
        if self._keys is not None:
            try:
                self._keys.check(request.headers.get("authorization"))
            except Unauthorized as exc:
                return unauthorized(str(exc))
        if request.method != "GET":
            return Response(
                '{"error": "the monitor answers GET only"}',
                status_code=405,
                media_type="application/json",
            )
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] >= SUMMARY_CACHE_S:
            self._cached = (now, json.dumps(self.tracker.summary()))
        return Response(self._cached[1], media_type="application/json")

    async def _export_forever(self, every_s: float = 5.0) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                self._export(every_s=0.0)
            except sqlite3.Error as exc:  # a full disk must not stop the gauges for good
                log.warning("monitor for %s: cannot export gauges: %s", self.app, exc)

    def _export(self, every_s: float = 2.0) -> None:
        now = time.monotonic()
        if now - self._last_export < every_s:
            return
        self._last_export = now
        # The gauges show the last-N window only: no need to read the time window from SQLite.
        for version, info in self.tracker.summary(time_window=False)["versions"].items():
            self._labelled.set(info["last_n"]["n"], tags={"app": self.app, "version": version})
            for name in _SCORES:
                value = info["last_n"].get(name)
                if value is not None:
                    self._gauge.set(
                        value, tags={"app": self.app, "version": version, "metric": name}
                    )
