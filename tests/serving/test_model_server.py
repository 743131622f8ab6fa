"""The model deployment's HTTP handling without a Ray cluster: the class under @serve.deployment
with a real ONNX model, fake handles standing in for the monitor, canary and shadow apps."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from ray.serve.exceptions import RayServeException
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from starlette.requests import Request
from starlette.responses import Response

import serving.model_server as model_server
from cluster.models.examples import example_data
from cluster.models.importer import Sample, import_model
from cluster.models.store import ModelStore
from serving.monitor.deployment import Monitor
from serving.traffic import Traffic

_, X_TEST, _, Y_TEST, NAMES = example_data()
ROW = X_TEST[0].tolist()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    tmp = tmp_path_factory.mktemp("models")
    store = ModelStore(tmp / "store")
    X_train, X_test, y_train, y_test, names = example_data()
    joblib.dump(LogisticRegression(max_iter=5000).fit(X_train, y_train), tmp / "lr.joblib")
    import_model(
        store,
        tmp / "lr.joblib",
        "cancer",
        Sample.from_array(X_test, y_test, names, "holdout"),
        trust_pickle=True,
    )
    X, y = load_diabetes(return_X_y=True)
    joblib.dump(Ridge().fit(X, y), tmp / "ridge.joblib")
    import_model(
        store,
        tmp / "ridge.joblib",
        "diabetes",
        Sample.from_array(X[:50], y[:50], None, "s"),
        trust_pickle=True,
    )
    return store


@pytest.fixture(autouse=True)
def replica_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """@serve.batch reads the replica's max_ongoing_requests; outside Serve there is none."""
    from types import SimpleNamespace

    from ray import serve

    context = SimpleNamespace(_deployment_config=SimpleNamespace(max_ongoing_requests=64))
    monkeypatch.setattr(serve, "get_replica_context", lambda: context)


class FakeHandle:
    """Looks like a DeploymentHandle: `handle.method.remote(*args)` is awaitable."""

    def __init__(self, call: Callable[[str, tuple[Any, ...]], Awaitable[Any]]) -> None:
        self._call = call
        self.calls: list[str] = []

    def __getattr__(self, method: str) -> Any:
        handle = self

        class _Method:
            def remote(self, *args: Any) -> Awaitable[Any]:
                handle.calls.append(method)
                return handle._call(method, args)

        return _Method()


def backed_by(target: Any) -> FakeHandle:
    async def call(method: str, args: tuple[Any, ...]) -> Any:
        return await getattr(target, method)(*args)

    return FakeHandle(call)


def failing() -> FakeHandle:
    async def call(method: str, args: tuple[Any, ...]) -> Any:
        raise RayServeException(f"{method}: application is being deleted")

    return FakeHandle(call)


def hanging() -> FakeHandle:
    async def call(method: str, args: tuple[Any, ...]) -> Any:
        await asyncio.sleep(3600)

    return FakeHandle(call)


_made: list[Any] = []


def make_server(store: ModelStore, model: str = "cancer", **kw: Any) -> Any:
    cls = model_server.ModelServer.func_or_class  # the class under @serve.deployment
    server = cls(app="m", version="1", model_dir=str(store.root / model / "1"), monitor=False, **kw)
    _made.append(server)
    return server


@pytest.fixture(autouse=True)
def no_graceful_stop_after_the_test() -> Iterator[None]:
    """Serve asks a replica for its last flush (`__del__`) and awaits it; here nobody would,
    so once a test is over its servers are marked as already stopped."""
    yield
    while _made:
        _made.pop()._stopping = True


@pytest.fixture
async def monitor(tmp_path: Path) -> AsyncIterator[Any]:
    cls = Monitor.func_or_class
    instance = cls.__new__(cls)
    await instance.__init__(app="m", state_dir=str(tmp_path))
    yield instance
    instance._exporter.cancel()
    instance.tracker.store.close()


def request(
    method: str, path: str, body: bytes | Iterator[bytes] = b"", declare: bool = True
) -> Request:
    chunks = iter([body]) if isinstance(body, bytes) else body
    headers = []
    if isinstance(body, bytes) and declare:
        headers.append((b"content-length", str(len(body)).encode()))

    async def receive() -> dict[str, Any]:
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    return Request(scope, receive)


async def call(server: Any, method: str, path: str, payload: Any) -> tuple[int, Any]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    response: Response = await server(request(method, path, body))
    return response.status_code, json.loads(bytes(response.body))


async def test_a_body_beyond_the_byte_cap_is_413_before_it_is_read(store: ModelStore) -> None:
    server = make_server(store, max_rows=4)
    limit = server._predict_limit
    assert limit < 20_000  # 4 records of 30 named features at full float precision, plus headroom
    big = b'{"instances": [' + b"0, " * limit + b"0]}"
    status, body = await call(server, "POST", "/predict", big)
    assert status == 413 and f"> limit {limit} bytes" in body["error"]
    # No content-length (chunked): reading stops at the cap instead of buffering forever.
    endless = iter(lambda: b" " * 65536, None)
    response = await server(request("POST", "/predict", endless))
    assert response.status_code == 413
    status, body = await call(server, "POST", "/predict", {"instances": [ROW] * 5})
    assert status == 413 and "too many rows: 5 > limit 4" in body["error"]
    status, body = await call(server, "POST", "/predict", {"instances": [ROW] * 4})
    assert status == 200 and len(body["predictions"]) == 4


async def test_feedback_records_per_request_are_capped(store: ModelStore, monitor: Any) -> None:
    server = make_server(store)
    server._monitor = backed_by(monitor)
    records = [
        {"request_id": f"r{i}", "label": 1} for i in range(model_server.MAX_FEEDBACK_RECORDS + 1)
    ]
    status, body = await call(server, "POST", "/feedback", records)
    assert status == 413 and "too many feedback records: 10001 > limit 10000" in body["error"]
    huge = json.dumps([{"request_id": "x" * 5_000_000, "label": 1}]).encode()
    status, body = await call(server, "POST", "/feedback", huge)
    assert status == 413 and "request body too large" in body["error"]
    assert monitor.tracker.summary()["feedback"] == {"waiting": 0, "pending_predictions": 0}


@pytest.mark.parametrize(
    ("label", "message"),
    [
        (float("nan"), "record 1: label nan is not one of the model's classes [0, 1]"),
        (float("inf"), "record 1: label inf is not one of the model's classes [0, 1]"),
        (2, "record 1: label 2 is not one of the model's classes [0, 1]"),
        ("cat", "record 1: label 'cat' is not one of the model's classes [0, 1]"),
        (0.7, "record 1: label 0.7 is not one of the model's classes [0, 1]"),
    ],
)
async def test_classifier_labels_must_be_classes(
    store: ModelStore, monitor: Any, label: Any, message: str
) -> None:
    server = make_server(store)
    server._monitor = backed_by(monitor)
    body = json.dumps([{"request_id": "a", "label": 1}, {"request_id": "b", "label": label}])
    status, answer = await call(server, "POST", "/feedback", body.encode())
    assert status == 400 and answer["error"] == message
    assert "feedback" not in monitor.tracker.summary()["feedback"]  # nothing reached the monitor


@pytest.mark.parametrize("label", ["abc", "1.5", float("nan"), float("-inf"), 10**400])
async def test_regressor_labels_must_be_finite_numbers(
    store: ModelStore, monitor: Any, label: Any
) -> None:
    server = make_server(store, model="diabetes")
    server._monitor = backed_by(monitor)
    body = (
        b'{"request_id": "a", "label": '
        + (str(label).encode() if isinstance(label, int) else json.dumps(label).encode())
        + b"}"
    )
    status, answer = await call(server, "POST", "/feedback", body)
    assert status == 400 and answer["error"].startswith("the record: label ")
    assert "(the model is a regressor)" in answer["error"]


@pytest.mark.parametrize("label", [" 1", "1 ", "1e0", "+1", "01", "1.0", "\u0661", "\uff11"])
async def test_a_label_is_a_class_only_when_it_is_exactly_one(
    store: ModelStore, monitor: Any, label: str
) -> None:
    # A lenient parse turns each of these into class 1: a way to feed a gate labels that
    # mean something else to the client than to us.
    server = make_server(store)
    server._monitor = backed_by(monitor)
    status, answer = await call(server, "POST", "/feedback", {"request_id": "a", "label": label})
    assert status == 400 and "is not one of the model's classes [0, 1]" in answer["error"]
    assert "feedback" not in monitor.tracker.summary()["feedback"]  # nothing reached the monitor


async def test_request_ids_are_unguessable_and_bounded(store: ModelStore, monitor: Any) -> None:
    server = make_server(store)
    server._monitor = backed_by(monitor)
    try:
        ids: list[str] = []
        for _ in range(3):
            status, body = await call(server, "POST", "/predict", {"instances": [ROW, ROW]})
            ids += body["request_ids"]
        # The time (14 hex digits, for the monitor's index), then 128 random bits.
        assert len(set(ids)) == 6 and all(len(i) == 46 for i in ids)
        assert all(int(i, 16) >= 0 for i in ids)
        times = [int(i[:14], 16) for i in ids]
        assert times == sorted(times) and abs(times[-1] / 1e6 - time.time()) < 60
        # The random parts share nothing the way "replica-counter" ids did.
        assert len({i[14:22] for i in ids}) == 6
        long_id = {"request_id": "a" * 129, "label": 1}
        status, answer = await call(server, "POST", "/feedback", long_id)
        assert status == 400 and "longer than 128 characters" in answer["error"]
    finally:
        server._flusher.cancel()


async def test_a_client_gone_mid_body_is_not_a_server_error(store: ModelStore) -> None:
    server = make_server(store)
    sent = iter([b'{"instances": [[1, 2'])

    async def receive() -> dict[str, Any]:
        chunk = next(sent, None)
        if chunk is None:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunk, "more_body": True}

    scope = {"type": "http", "method": "POST", "path": "/predict", "headers": []}
    response = await server(Request(scope, receive))
    assert response.status_code == 499
    assert "client disconnected after 20 bytes" in json.loads(bytes(response.body))["error"]


async def test_the_monitor_route_answers_from_a_summary_a_second_old(
    store: ModelStore, monitor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_server(store)
    handle = backed_by(monitor)
    server._monitor = handle
    answers = await asyncio.gather(*(call(server, "GET", "/monitor", b"") for _ in range(20)))
    assert {status for status, _ in answers} == {200}
    assert handle.calls.count("summary") == 1  # twenty callers, one summary
    monkeypatch.setattr(model_server, "MONITOR_CACHE_S", 0.0)
    await call(server, "GET", "/monitor", b"")
    assert handle.calls.count("summary") == 2


async def test_labels_are_recorded_as_the_models_classes(store: ModelStore, monitor: Any) -> None:
    server = make_server(store)
    server._monitor = backed_by(monitor)
    try:
        status, body = await call(server, "POST", "/predict", {"instances": X_TEST[:3].tolist()})
        assert status == 200
        labels = ["1", 1.0, 0]
        records = [
            {"request_id": r, "label": y} for r, y in zip(body["request_ids"], labels, strict=True)
        ]
        status, answer = await call(server, "POST", "/feedback", records)
        assert status == 200 and answer["joined"] == 3
        status, summary = await call(server, "GET", "/monitor", b"")
        assert status == 200 and summary["versions"]["1"]["last_n"]["n"] == 3
        expected = np.mean(np.asarray(body["predictions"]) == np.asarray([1, 1, 0]))
        assert summary["versions"]["1"]["last_n"]["accuracy"] == expected
    finally:
        server._flusher.cancel()


@pytest.mark.parametrize("monitor_handle", [failing, hanging])
async def test_a_monitor_that_is_down_is_a_503(
    store: ModelStore, monkeypatch: pytest.MonkeyPatch, monitor_handle: Callable[[], FakeHandle]
) -> None:
    monkeypatch.setattr(model_server, "MONITOR_TIMEOUT_S", 0.05)
    server = make_server(store)
    server._monitor = monitor_handle()
    try:
        status, body = await call(server, "POST", "/feedback", {"request_id": "a", "label": 1})
        assert status == 503 and "monitor of m is unavailable" in body["error"]
        status, body = await call(server, "GET", "/monitor", b"")
        assert status == 503 and "monitor of m is unavailable" in body["error"]
        status, body = await call(server, "POST", "/predict", {"instances": [ROW]})
        assert status == 200  # predictions never depend on the monitor
    finally:
        if server._flusher is not None:
            server._flusher.cancel()


@pytest.mark.parametrize("canary_handle", [failing, hanging])
async def test_a_canary_that_is_down_falls_back_to_live(
    store: ModelStore, monkeypatch: pytest.MonkeyPatch, canary_handle: Callable[[], FakeHandle]
) -> None:
    monkeypatch.setattr(model_server, "CANARY_TIMEOUT_S", 0.05)
    server = make_server(store)
    server.traffic = Traffic.from_config(
        {"canary": {"app": "m--2", "version": "2", "fraction": 1.0}}
    )
    handle = canary_handle()
    server._handles["m--2"] = handle
    for _ in range(3):
        status, body = await call(server, "POST", "/predict", {"instances": [ROW]})
        assert status == 200 and body["version"] == "1"
    assert server.counts["canary_fallbacks"] == 3
    assert handle.calls == [
        "predict_rows"
    ]  # paused after the first failure, not retried per request
    assert server.describe()["counts"]["canary_fallbacks"] == 3


async def test_a_canary_that_answers_is_used(store: ModelStore) -> None:
    server = make_server(store)
    server.traffic = Traffic.from_config(
        {"canary": {"app": "m--2", "version": "2", "fraction": 1.0}}
    )

    async def answer(method: str, args: tuple[Any, ...]) -> Any:
        return {"predictions": [0], "version": "2", "request_ids": ["x"]}

    server._handles["m--2"] = FakeHandle(answer)
    status, body = await call(server, "POST", "/predict", {"instances": [ROW]})
    assert status == 200 and body["version"] == "2" and server.counts["canary_fallbacks"] == 0


async def test_mirrors_in_flight_are_capped(store: ModelStore) -> None:
    server = make_server(store)
    server.traffic = Traffic.from_config(
        {"shadow": {"app": "m--2", "version": "2", "fraction": 1.0}}
    )
    server._handles["m--2"] = hanging()
    extra = 6
    for _ in range(model_server.MAX_SHADOW_IN_FLIGHT + extra):
        status, _ = await call(server, "POST", "/predict", {"instances": [ROW]})
        assert status == 200
    assert len(server._background) == model_server.MAX_SHADOW_IN_FLIGHT
    assert server.counts["shadow_skipped"] == extra
    for task in list(server._background):
        task.cancel()
    await asyncio.sleep(0)


async def test_no_drift_binning_without_a_monitor(store: ModelStore, monitor: Any) -> None:
    server = make_server(store)
    assert server._bins.enabled  # the model has reference histograms
    await call(server, "POST", "/predict", {"instances": [ROW]})
    assert server._bins.take() is None
    server._monitor = backed_by(monitor)
    await call(server, "POST", "/predict", {"instances": [ROW]})
    assert server._bins.take() is not None
    server._flusher.cancel()


async def test_records_a_replica_cannot_keep_are_counted_and_its_stop_flushes_the_rest(
    store: ModelStore, monitor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The monitor away: the buffer keeps MAX_BUFFERED records and counts the others; back,
    it gets both. A replica stopped gracefully (Serve calls __del__) sends what it holds."""
    monkeypatch.setattr(model_server, "MAX_BUFFERED", 3)
    monkeypatch.setattr(model_server, "MONITOR_TIMEOUT_S", 0.05)
    monkeypatch.setattr(model_server, "FLUSH_EVERY_S", 3600)  # flushed by hand here
    server = make_server(store)
    server._monitor = failing()
    try:
        status, _ = await call(server, "POST", "/predict", {"instances": X_TEST[:5].tolist()})
        assert status == 200 and len(server._buffer) == 3 and server._dropped == 2
        server._monitor = backed_by(monitor)
        await server._flush()
        counters = (await monitor.summary())["feedback"]
        assert counters["dropped_predictions"] == 2 and counters["pending_predictions"] == 3
        assert server._dropped == 0
        status, _ = await call(server, "POST", "/predict", {"instances": X_TEST[:2].tolist()})
        await server.__del__()
        assert not server._buffer
        assert (await monitor.summary())["feedback"]["pending_predictions"] == 5
    finally:
        if server._flusher is not None:
            server._flusher.cancel()
