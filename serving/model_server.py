"""The model deployment: one Serve application per live version of an app.

The live version answers on the app's public route and may forward a canary share to, or
mirror a shadow share to, another version's application (see traffic.py). Requests are
validated before they reach onnxruntime, batched across concurrent callers, and every
prediction is reported to the app's monitor in the background.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from ray import serve
from ray.exceptions import RayError
from ray.serve.exceptions import RayServeException
from ray.serve.handle import DeploymentHandle
from ray.util import metrics
from starlette.requests import Request
from starlette.responses import Response

from serving.auth import KeyCheck, Unauthorized, unauthorized
from serving.body import predict_body_limit, read_body
from serving.drift import FeatureBins
from serving.handles import on_loop
from serving.instances import Batch, InstanceParser
from serving.labels import LabelChecker, LabelError
from serving.monitor.records import PredictionBlock, RecordBuffer
from serving.onnx_model import OnnxModel, Prediction
from serving.request_ids import new_ids
from serving.traffic import Traffic, TrafficConfigError
from serving.validation import BadRequest, parse_json

log = logging.getLogger("ray.serve")
FLUSH_EVERY_S = 1.0  # each flush is a call to the monitor; /feedback flushes first anyway
MAX_BUFFERED = 50_000  # prediction records kept for the monitor if it is slow or away
MAX_FEEDBACK_RECORDS = 10_000  # per /feedback request; more is a 413
FEEDBACK_BYTES_PER_RECORD = 256  # a record is ~50 bytes; the body cap leaves ample room
MAX_SHADOW_IN_FLIGHT = 64  # mirrored calls awaiting the shadow; beyond it a mirror is skipped
CANARY_TIMEOUT_S = 5.0  # a canary slower than this answers from the live version instead
CANARY_PAUSE_S = 5.0  # after a canary failure, the live version answers its share this long
MONITOR_TIMEOUT_S = 10.0
MONITOR_CACHE_S = 1.0  # GET /monitor answers from a summary at most this old
MAX_REQUEST_ID = 128  # characters; ours are 32
# What a call to another Serve application raises when it is down, restarting, deleted,
# overloaded, failing or too slow: Serve's own errors, Ray's (actor died, task error),
# KeyError from get_deployment_handle for an application that does not exist, and timeouts.
UNAVAILABLE = (RayServeException, RayError, KeyError, TimeoutError)
PREVIEW = "/__v/"  # a version that is not live answers below ROUTE/__v/VERSION (keys only)
OPEN_PATHS = ("/version", "/healthz", "/-/healthz")  # on the live route, no key needed


class MonitorUnavailable(Exception):
    """The app's monitor cannot be reached now: a 503, the request was fine."""


def json_response(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json")


@serve.deployment(
    ray_actor_options={"num_cpus": 0.5},
    max_ongoing_requests=64,
    health_check_period_s=5,
    # A version is retired only once no route leads to it, and a scaled-down replica leaves
    # the routers' lists before its stop begins, so Serve's 2 s wait before the first look
    # at ongoing requests was mostly delay: 0.5 s makes a retire 2.4 -> 0.8 s here.
    graceful_shutdown_wait_loop_s=0.5,
)
class ModelServer:
    """Serves one model version; a failing load keeps the replica (and its version) unhealthy."""

    def __init__(
        self,
        app: str,
        version: str,
        model_dir: str,
        max_rows: int = 1024,
        monitor: bool = True,
        keys_file: str | None = None,
        auth_predict: bool = False,
        log_features: bool = False,
    ) -> None:
        self.app = app
        # No keys file: no keys asked (unit tests, benchmarks); our configs always name one.
        self._keys = KeyCheck(keys_file, app) if keys_file else None
        self._auth_predict = auth_predict
        # Each live row's input goes to the monitor with its prediction (stored on the node,
        # for `models update`): only when the inventory says so.
        self._log_features = log_features
        self.version = version
        self.model = OnnxModel(Path(model_dir))
        self.max_rows = max_rows
        self._parser = InstanceParser(self.model.meta.schema, max_rows)
        self._predict_limit = predict_body_limit(max_rows, self.model.meta.schema)
        self._labels = LabelChecker(self.model.meta.task, self.model.meta.classes)
        self.traffic = Traffic()
        self._handles: dict[str, DeploymentHandle] = {}
        self._monitor = (
            serve.get_deployment_handle("Monitor", app_name=f"{app}--monitor") if monitor else None
        )
        self._buffer = RecordBuffer(MAX_BUFFERED)
        self._dropped = 0  # records the buffer could not keep, told to the monitor next flush
        self._bins = FeatureBins(self.model.meta.raw.get("reference"))
        self._flusher: asyncio.Task[None] | None = None
        self._stopping = False  # set once Serve's graceful stop has asked for the last flush
        self._registered = False
        self._summary: tuple[float, Any] | None = None  # (when, answer) of the last /monitor
        self._summary_lock = asyncio.Lock()
        self._background: set[asyncio.Task[Any]] = set()
        self._canary_paused_until = 0.0
        self.counts = {"canary_fallbacks": 0, "shadow_skipped": 0}
        # One counter update per request (Serve already counts requests and latency per app):
        # rows by role, and client errors by status, which Serve cannot tell apart.
        self._rows = metrics.Counter(
            "mlops_rows", description="Rows predicted", tag_keys=("app", "version", "role")
        )
        self._rejected = metrics.Counter(
            "mlops_rejected_requests",
            description="Requests refused as bad input, by status",
            tag_keys=("app", "version", "status"),
        )
        self._fallbacks = metrics.Counter(
            "mlops_degraded_requests",
            description="Canary requests answered by the live version, and mirrors skipped",
            tag_keys=("app", "version", "reason"),
        )
        self._tags = {"app": app, "version": version}

    # -- configuration --------------------------------------------------------------
    def reconfigure(self, config: dict[str, Any]) -> None:
        """Weights and shadow arrive here (user_config): no restart, effective at once."""
        try:
            self.traffic = Traffic.from_config(config.get("traffic"))
        except TrafficConfigError as exc:
            log.error("ignoring invalid traffic config for %s v%s: %s", self.app, self.version, exc)

    def check_health(self) -> None:
        if self.model is None:
            raise RuntimeError("model not loaded")

    # -- HTTP -----------------------------------------------------------------------
    async def __call__(self, request: Request) -> Response:
        path = _subpath(request)
        method = request.method
        try:
            if self._keys is not None and self._needs_key(request, path):
                self._keys.check(request.headers.get("authorization"))
            if path == "/predict" and method == "POST":
                return await self._predict_http(request)
            if path == "/feedback" and method == "POST":
                return await self._feedback_http(request)
            if path == "/version" and method == "GET":
                return json_response(self.describe())
            if path == "/monitor" and method == "GET":
                return await self._monitor_http()
            if path in ("/healthz", "/-/healthz") and method == "GET":
                return json_response({"ok": True, "version": self.version})
        except BadRequest as exc:
            self._rejected.inc(tags={**self._tags, "status": str(exc.status)})
            return json_response({"error": exc.message}, exc.status)
        except MonitorUnavailable as exc:
            return json_response({"error": str(exc)}, 503)
        except Unauthorized as exc:
            self._rejected.inc(tags={**self._tags, "status": "401"})
            return unauthorized(str(exc))
        known = ("POST /predict", "POST /feedback", "GET /version", "GET /monitor", "GET /healthz")
        return json_response(
            {"error": f"no route {method} {path}; try one of: {', '.join(known)}"}, 404
        )

    def _needs_key(self, request: Request, path: str) -> bool:
        """Labels, the monitor and every preview route need the app's key; predictions need
        it when the app says so."""
        if PREVIEW in request.scope.get("root_path", ""):
            return True
        if path == "/predict":
            return self._auth_predict
        return path not in OPEN_PATHS

    async def _predict_http(self, request: Request) -> Response:
        n_features = self.model.meta.n_features
        body_bytes = await read_body(
            request, self._predict_limit, f"at most {self.max_rows} rows of {n_features} features"
        )
        rows = self._parser.parse(parse_json(body_bytes))
        if self.traffic.pick_canary():
            answer = await self._canary(rows)
            if answer is not None:
                return json_response(answer)
        body = await self.predict_rows(rows, None, "live")
        if self.traffic.pick_shadow():
            self._mirror(rows, body["request_ids"])
        return json_response(body)

    async def _canary(self, rows: Batch) -> dict[str, Any] | None:
        """The canary's answer, or None when it is down or slow: the live version answers then."""
        canary = self.traffic.canary
        assert canary is not None
        if time.monotonic() >= self._canary_paused_until:
            try:
                answer: dict[str, Any] = await asyncio.wait_for(
                    self._handle(canary.app).predict_rows.remote(rows, None, "canary"),
                    CANARY_TIMEOUT_S,
                )
                return answer
            except UNAVAILABLE as exc:
                self._canary_paused_until = time.monotonic() + CANARY_PAUSE_S
                log.warning(
                    "canary %s unavailable (%s: %s); live answers its share for %gs",
                    canary.app,
                    type(exc).__name__,
                    exc,
                    CANARY_PAUSE_S,
                )
        self.counts["canary_fallbacks"] += 1
        self._fallbacks.inc(tags={**self._tags, "reason": "canary_fallback"})
        return None

    async def _ask_monitor(self, method: str, *args: Any) -> Any:
        """A call to the app's monitor, or MonitorUnavailable (a 503) when it is down or slow."""
        assert self._monitor is not None
        monitor = on_loop(self._monitor)
        try:
            return await asyncio.wait_for(getattr(monitor, method).remote(*args), MONITOR_TIMEOUT_S)
        except UNAVAILABLE as exc:
            raise MonitorUnavailable(
                f"the monitor of {self.app} is unavailable ({type(exc).__name__}); retry shortly"
            ) from None

    async def _feedback_http(self, request: Request) -> Response:
        limit = MAX_FEEDBACK_RECORDS * FEEDBACK_BYTES_PER_RECORD
        payload = parse_json(
            await read_body(request, limit, f"at most {MAX_FEEDBACK_RECORDS} records")
        )
        items = payload if isinstance(payload, list) else [payload]
        if not items:
            raise BadRequest(
                'no feedback records: send {"request_id": ..., "label": ...} or a list of them'
            )
        if len(items) > MAX_FEEDBACK_RECORDS:
            raise BadRequest(
                f"too many feedback records: {len(items)} > limit {MAX_FEEDBACK_RECORDS}; "
                "split the request",
                status=413,
            )
        pairs: list[tuple[str, Any]] = []
        for i, item in enumerate(items):
            where = f"record {i}" if isinstance(payload, list) else "the record"
            if not isinstance(item, dict) or "request_id" not in item or "label" not in item:
                raise BadRequest(f"{where} needs 'request_id' and 'label'")
            if not isinstance(item["request_id"], str):
                raise BadRequest(f"{where}: 'request_id' must be a string")
            if len(item["request_id"]) > MAX_REQUEST_ID:
                raise BadRequest(
                    f"{where}: 'request_id' is longer than {MAX_REQUEST_ID} characters; "
                    "send the id a prediction answered with"
                )
            label = item["label"]
            if not isinstance(label, str | int | float) or isinstance(label, bool):
                raise BadRequest(f"{where}: 'label' must be a number or a string")
            try:
                label = self._labels.check(label)
            except LabelError as exc:
                raise BadRequest(f"{where}: {exc}") from None
            pairs.append((item["request_id"], label))
        if self._monitor is None:
            raise BadRequest("this deployment runs without a monitor", status=409)
        # Our own recent predictions reach the monitor before the labels (or: a 503 at once).
        await self._flush(strict=True)
        return json_response(await self._ask_monitor("feedback", pairs))

    async def _monitor_http(self) -> Response:
        """The monitor's summary, shared by every caller within MONITOR_CACHE_S: asking it in a
        loop costs the monitor one summary a second per replica, however fast the loop."""
        if self._monitor is None:
            return json_response({"error": "this deployment runs without a monitor"}, 409)
        async with self._summary_lock:
            now = time.monotonic()
            if self._summary is None or now - self._summary[0] >= MONITOR_CACHE_S:
                self._summary = (time.monotonic(), await self._ask_monitor("summary"))
            return json_response(self._summary[1])

    def describe(self) -> dict[str, Any]:
        meta = self.model.meta
        versions: list[dict[str, Any]] = [
            {"version": self.version, "role": "live", "app": f"{self.app}--{self.version}"}
        ]
        if self.traffic.canary:
            versions.append(
                {
                    "version": self.traffic.canary.version,
                    "role": "canary",
                    "weight": self.traffic.canary.fraction,
                }
            )
        if self.traffic.shadow:
            versions.append(
                {
                    "version": self.traffic.shadow.version,
                    "role": "shadow",
                    "fraction": self.traffic.shadow.fraction,
                }
            )
        canary_share = self.traffic.canary.fraction if self.traffic.canary else 0.0
        versions[0]["weight"] = 1.0 - canary_share
        return {
            "app": self.app,
            "version": self.version,
            "versions": versions,
            "model": {
                "name": meta.name,
                "version": meta.version,
                "sha256": meta.sha256,
                "task": meta.task,
                "n_features": meta.n_features,
                "feature_names": list(meta.feature_names) if meta.feature_names else None,
                # What /predict takes: columns in order, types, categories, missing allowed.
                "input": meta.schema.to_json(),
                "classes": list(meta.classes) if meta.classes is not None else None,
                "created": meta.raw.get("created"),
                "metrics": meta.raw.get("metrics"),
            },
            "max_rows": self.max_rows,
            "counts": dict(self.counts),
        }

    # -- prediction -----------------------------------------------------------------
    async def predict_rows(
        self, rows: Batch, request_ids: list[str] | None, role: str
    ) -> dict[str, Any]:
        """Predict and report to the monitor; also the entry point for canary and shadow calls
        (rows the live version parsed: checked against this version's schema first)."""
        if role != "live":
            self._parser.check_forwarded(rows)
        result: Prediction = await self._infer(rows)
        if self._monitor is not None:
            self._bins.add(rows)  # live feature distribution, for drift: only the monitor reads it
        ids = request_ids or new_ids(len(rows))
        body: dict[str, Any] = {
            "predictions": result.labels,
            "version": self.version,
            "request_ids": ids,
        }
        probas = result.probabilities.tolist() if result.probabilities is not None else None
        if probas is not None:
            body["probabilities"] = probas
        if self._monitor is not None:
            features = rows.records(self.model.meta.schema) if self._log_features else None
            block = PredictionBlock.of_request(
                ids, self.version, role, result.labels, result.probabilities, time.time(), features
            )
            self._count_dropped(self._buffer.add(block))
            self._ensure_flusher()
        self._rows.inc(len(rows), tags={**self._tags, "role": role})
        return body

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.0)
    async def _infer(self, batches: list[Batch]) -> list[Prediction]:
        """One onnxruntime call for every request waiting at this moment."""
        if len(batches) == 1:
            return [self.model.predict(batches[0])]
        merged = self.model.predict(Batch.concat(batches))
        out, start = [], 0
        for batch in batches:
            end = start + len(batch)
            probas = merged.probabilities[start:end] if merged.probabilities is not None else None
            out.append(Prediction(merged.labels[start:end], probas))
            start = end
        return out

    def _mirror(self, rows: Batch, request_ids: list[str]) -> None:
        """Send a copy to the shadow version; its answer is recorded there, never returned.

        A slow shadow must not pile up tasks (and memory) here: beyond MAX_SHADOW_IN_FLIGHT
        outstanding mirrors, the copy is skipped and counted.
        """
        assert self.traffic.shadow is not None
        if len(self._background) >= MAX_SHADOW_IN_FLIGHT:
            self.counts["shadow_skipped"] += 1
            self._fallbacks.inc(tags={**self._tags, "reason": "shadow_skipped"})
            return
        task = asyncio.create_task(self._call_shadow(self.traffic.shadow.app, rows, request_ids))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _call_shadow(self, app: str, rows: Batch, request_ids: list[str]) -> None:
        try:
            await self._handle(app).predict_rows.remote(rows, request_ids, "shadow")
        except Exception as exc:  # noqa: BLE001 - a failing shadow must never affect live traffic
            log.warning("shadow call to %s failed: %s", app, exc)

    def _handle(self, app: str) -> DeploymentHandle:
        """The canary's or shadow's handle; called on the loop that serves requests."""
        if app not in self._handles:
            handle = serve.get_deployment_handle("ModelServer", app_name=app)
            self._handles[app] = on_loop(handle)
        return self._handles[app]

    # -- monitor feed ---------------------------------------------------------------
    def _count_dropped(self, dropped: int) -> None:
        """Rows the buffer could not keep (the monitor away for long): told to it next flush."""
        if dropped:
            self._dropped += dropped
            log.warning("%s v%s: the monitor is away; %d prediction records dropped so far",
                        self.app, self.version, self._dropped)  # fmt: skip

    def __del__(self) -> Coroutine[Any, Any, None] | None:
        """Serve's graceful stop (a retired version, a scale-down): Serve awaits the flush this
        returns, so what is buffered goes to the monitor first, or is logged as lost.

        Not `async def`: the garbage collector calls `__del__` too, later, and a coroutine it
        cannot await would only be a warning. Outside a replica, and on that second call,
        there is nothing to return.
        """
        if getattr(self, "_stopping", True) or self._monitor is None:
            return None
        try:
            serve.get_replica_context()
        except RayServeException:
            return None  # not a Serve replica (a unit test): nowhere to send anything
        self._stopping = True
        return self._last_flush()

    async def _last_flush(self) -> None:
        if not (self._buffer or self._dropped):
            return
        try:
            await self._flush(strict=True)
        except MonitorUnavailable as exc:
            log.warning("%s; %d prediction records of %s v%s are lost with this replica",
                        exc, len(self._buffer) + self._dropped, self.app, self.version)  # fmt: skip

    def _ensure_flusher(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_forever())

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            await self._flush()

    async def _flush(self, strict: bool = False) -> None:
        """Send buffered records (and drift bins); kept for the next try if the monitor is away,
        and with `strict`, MonitorUnavailable is raised after keeping them."""
        if self._monitor is None or not (self._buffer or self._dropped):
            return
        blocks = self._buffer.take()
        dropped = self._dropped
        counts = self._bins.take()
        try:
            if not self._registered:
                meta = self.model.meta
                classes = list(meta.classes) if meta.classes is not None else None
                reference = meta.raw.get("reference")
                await self._ask_monitor("register", self.version, meta.task, classes, reference)
                self._registered = True
            await self._ask_monitor(
                "record", blocks, {self.version: counts} if counts else None, dropped
            )
            self._dropped -= dropped
        except MonitorUnavailable as exc:  # keep the records for the next try, bounded
            log.warning("%s; keeping %d records", exc, sum(len(b) for b in blocks))
            self._count_dropped(self._buffer.give_back(blocks))
            self._bins.give_back(counts)
            if strict:
                raise


def _subpath(request: Request) -> str:
    """The path below the app's route prefix, whichever way the ASGI server reports it."""
    path: str = request.scope.get("path", "/")
    root: str = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path.rstrip("/") or "/"
