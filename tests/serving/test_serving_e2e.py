"""The serving runtime on a real Ray head: real HTTP through Serve's proxy, real ONNX models."""

from __future__ import annotations

import asyncio
import math
import os
import re
import signal

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from sklearn import metrics

from cluster.models.examples import example_data
from tests.support.load import run_load
from tests.support.serve_env import ServeEnv

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

_, X_TEST, _, Y_TEST, _ = example_data()
ROWS = X_TEST.tolist()


@pytest.fixture
async def env(serve_env: ServeEnv) -> ServeEnv:
    """cancer (v1 live, v2 preview), acc (v2 live) and mirror (v1 live, v2 shadow), reset per test."""
    for spec in (
        # 171 holdout rows, fewer than the monitor's 200 for a drift figure: enough here,
        # where the rows are the reference sample itself and the figure is checked exactly.
        serve_env.app_spec("acc", "2", ["2"], monitor_settings={"drift_min_rows": 100}),
        serve_env.app_spec("mirror", "1", ["1", "2"], shadow=("2", 1.0)),
        serve_env.app_spec("cancer", "1", ["1", "2"]),
    ):
        serve_env.specs[spec.app] = spec
    await serve_env.deploy(serve_env.specs["cancer"])
    await serve_env.wait_live("cancer", "1")
    return serve_env


async def post(client: httpx.AsyncClient, path: str, body: object) -> httpx.Response:
    return await client.post(path, json=body)


async def test_predictions_equal_the_onnx_models(env: ServeEnv) -> None:
    async with env.client(timeout=30) as client:
        for version, path in (("1", "/cancer/predict"), ("2", "/cancer/__v/2/predict")):
            session = ort.InferenceSession(
                str(env.store.root / "breast-cancer" / version / "model.onnx")
            )
            labels, probas = session.run(None, {"X": X_TEST.astype(np.float32)})
            got_labels: list[int] = []
            got_probas: list[list[float]] = []
            for start in range(0, len(ROWS), 50):  # requests of 50, 50, 50, 21 rows
                response = await post(client, path, {"instances": ROWS[start : start + 50]})
                assert response.status_code == 200, response.text
                body = response.json()
                assert body["version"] == version
                assert (
                    len(body["request_ids"])
                    == len(body["predictions"])
                    == len(ROWS[start : start + 50])
                )
                got_labels += body["predictions"]
                got_probas += body["probabilities"]
            assert got_labels == labels.tolist()
            np.testing.assert_allclose(got_probas, probas, atol=1e-6)


async def versions_answering(env: ServeEnv, app: str, n: int) -> dict[str, int]:
    result = await run_load(
        f"{env.head.serve_url}/{app}/predict", {"instances": ROWS[:1]}, concurrency=4, total=n
    )
    assert result.failed == 0, result.failures[:3]
    return dict(result.versions)


async def test_weights_route_as_asked_without_restarting_replicas(env: ServeEnv) -> None:
    before = await env.replica_ids("cancer")
    assert await versions_answering(env, "cancer", 200) == {"1": 200}  # 100/0
    await env.update("cancer", live="2")
    await env.wait_live("cancer", "2")
    assert await versions_answering(env, "cancer", 200) == {"2": 200}  # 0/100
    await env.update("cancer", live="1", canary=("2", 0.5))
    await env.wait_live("cancer", "1")
    await asyncio.sleep(1)  # reconfigure() reaches every replica
    counts = await versions_answering(env, "cancer", 400)  # 50/50
    assert abs(counts.get("2", 0) - 200) < 4 * math.sqrt(400 * 0.25), counts
    assert await env.replica_ids("cancer") == before


async def test_switch_under_load_fails_no_request(env: ServeEnv) -> None:
    stop = asyncio.Event()
    load = asyncio.create_task(
        run_load(
            f"{env.head.serve_url}/cancer/predict",
            {"instances": ROWS[:1]},
            concurrency=8,
            stop=stop,
        )
    )
    try:
        await asyncio.sleep(1)
        for live in ("2", "1", "2", "1"):
            await env.update("cancer", live=live)
            await env.wait_live("cancer", live)
            await asyncio.sleep(0.5)
    finally:
        stop.set()
    result = await load
    assert result.failed == 0, result.failures[:5]
    assert result.sent >= 200 and set(result.versions) == {"1", "2"}


async def test_shadow_results_are_recorded_not_returned(env: ServeEnv) -> None:
    async with env.client(timeout=30) as client:
        ids, labels = [], []
        for i in range(40):
            body = (await post(client, "/mirror/predict", {"instances": [ROWS[i]]})).json()
            assert body["version"] == "1"  # the shadow's answers are never returned
            ids += body["request_ids"]
            labels.append(int(Y_TEST[i]))
        await asyncio.sleep(0.5)  # shadow calls and monitor flushes happen in the background
        feedback = await post(
            client,
            "/mirror/feedback",
            [{"request_id": r, "label": y} for r, y in zip(ids, labels, strict=True)],
        )
        assert feedback.status_code == 200
        summary = await poll_monitor(
            client,
            "/mirror/monitor",
            lambda s: s["versions"].get("2", {}).get("last_n", {}).get("n", 0) >= 40,
        )
    shadow = summary["versions"]["2"]
    assert shadow["roles"] == ["shadow"] and shadow["last_n"]["n"] == 40
    assert summary["versions"]["1"]["roles"] == ["live"]


async def poll_monitor(client: httpx.AsyncClient, path: str, done, timeout: float = 20.0) -> dict:  # type: ignore[no-untyped-def, type-arg]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        summary = (await client.get(path)).json()
        if done(summary) or loop.time() > deadline:
            return summary  # type: ignore[no-any-return]
        await asyncio.sleep(0.3)


async def test_monitor_equals_sklearn_and_survives_a_crash(env: ServeEnv) -> None:
    async with env.client(timeout=30) as client:
        ids, preds, probas = [], [], []
        for start in range(0, len(ROWS), 20):
            body = (
                await post(client, "/acc/predict", {"instances": ROWS[start : start + 20]})
            ).json()
            ids += body["request_ids"]
            preds += body["predictions"]
            probas += [p[1] for p in body["probabilities"]]
        records = [{"request_id": r, "label": int(y)} for r, y in zip(ids, Y_TEST, strict=True)]
        records.append({"request_id": "never-issued", "label": 1})
        result = (await post(client, "/acc/feedback", records)).json()
        assert result["received"] == len(ROWS) + 1
        summary = await poll_monitor(
            client, "/acc/monitor", lambda s: s["versions"]["2"]["last_n"]["n"] == len(ROWS)
        )
        drift = summary["versions"]["2"]["drift"]  # the holdout is the reference sample itself
        assert drift is not None and drift["rows"] == len(ROWS) and not drift["warning"]
        window = summary["versions"]["2"]["last_n"]
        assert window["n"] == len(ROWS)
        y = Y_TEST.tolist()
        assert window["accuracy"] == metrics.accuracy_score(y, preds)
        assert window["precision"] == pytest.approx(metrics.precision_score(y, preds), abs=1e-12)
        assert window["recall"] == pytest.approx(metrics.recall_score(y, preds), abs=1e-12)
        assert window["f1"] == pytest.approx(metrics.f1_score(y, preds), abs=1e-12)
        assert window["roc_auc"] == pytest.approx(metrics.roc_auc_score(y, probas), abs=1e-12)

        # Crash the monitor's process: Serve restarts it, and nothing labelled is lost.
        async with env.api() as api:
            details = await api.applications()
        [replica] = details["applications"]["acc--monitor"]["deployments"]["Monitor"]["replicas"]
        os.kill(replica["pid"], signal.SIGKILL)
        new = await restarted_monitor(env, replica["pid"])
        assert new["pid"] != replica["pid"]
        await asyncio.sleep(1.1)  # past the answer the model replica keeps for a second
        after = await poll_monitor(
            client,
            "/acc/monitor",
            lambda s: "versions" in s and s["versions"]["2"]["last_n"]["n"] == len(ROWS),
            timeout=60,
        )
        # Labelled records, drift reference and drift bins all come back from SQLite.
        kept = ("labelled_total", "roles", "last_n", "last_s", "drift", "drift_status")
        assert {k: after["versions"]["2"][k] for k in kept} == {
            k: summary["versions"]["2"][k] for k in kept
        }


async def restarted_monitor(env: ServeEnv, old_pid: int, timeout: float = 60.0) -> dict:  # type: ignore[type-arg]
    """The monitor's replica once Serve has replaced the killed one and it is running."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        async with env.api() as api:
            details = await api.applications()
        replicas = details["applications"]["acc--monitor"]["deployments"]["Monitor"]["replicas"]
        running = [r for r in replicas if r.get("pid") not in (None, old_pid)
                   and r.get("state") == "RUNNING"]  # fmt: skip
        if running:
            return running[0]  # type: ignore[no-any-return]
        assert loop.time() < deadline, f"the monitor was not replaced within {timeout}s"
        await asyncio.sleep(0.5)


BAD = [
    (b"", 400, "empty request body"),
    (b"{", 400, "malformed JSON"),
    (b'{"instances": []}', 400, "'instances' is empty"),
    (b'{"rows": [[1]]}', 400, "missing 'instances'"),
    (b'{"instances": [[1, 2]]}', 400, "instances[0] has 2 features, expected 30"),
    (
        b'{"instances": [[' + b'"x", ' + b"0, " * 28 + b"0]]}",
        400,
        'instances[0][0] is not a number: "x"',
    ),
    (b'{"instances": [[' + b"0, " * 29 + b"NaN]]}", 400, "instances[0][29] is NaN"),
    (b'{"instances": [[' + b"0, " * 29 + b"Infinity]]}", 400, "instances[0][29] is infinite"),
    (b"[" * 200_000, 400, "nested too deeply"),
    (
        b'{"instances": [[' + b"0, " * 3 + b"1" + b"0" * 400 + b", 0" * 26 + b"]]}",
        400,
        "instances[0][3] is out of float32 range",
    ),
]


async def test_bad_input_gets_4xx_and_never_hurts_a_replica(env: ServeEnv) -> None:
    before = await env.replica_ids("cancer")
    async with env.client(timeout=30) as client:
        for body, status, message in BAD:
            response = await client.post("/cancer/predict", content=body)
            assert response.status_code == status, (body, response.text)
            assert message in response.json()["error"]
        too_many = await post(client, "/cancer/predict", {"instances": [ROWS[0]] * 1025})
        assert too_many.status_code == 413 and "limit 1024" in too_many.json()["error"]
        for body, message in (
            ([], "no feedback records"),
            ({"label": 1}, "needs 'request_id' and 'label'"),
            ({"request_id": 5, "label": 1}, "must be a string"),
            ({"request_id": "a", "label": [1]}, "'label' must be a number or a string"),
            ({"request_id": "a", "label": 2}, "label 2 is not one of the model's classes [0, 1]"),
            (
                [{"request_id": "a", "label": 1}, {"request_id": "b", "label": 0.7}],
                "record 1: label 0.7 is not one of the model's classes",
            ),
            # Not class 1 for us unless it is class 1 for everybody.
            ({"request_id": "a", "label": " 1"}, "label ' 1' is not one of the model's classes"),
            ({"request_id": "a", "label": "1e0"}, "label '1e0' is not one of the model's"),
            ({"request_id": "a", "label": "\u0661"}, "is not one of the model's classes"),
            ({"request_id": "a" * 129, "label": 1}, "longer than 128 characters"),
        ):
            response = await post(client, "/cancer/feedback", body)
            assert response.status_code == 400 and message in response.json()["error"]
        for body, message in (
            (b'{"request_id": "a", "label": NaN}', "label nan is not one of the model's classes"),
            (b'{"instances": [' + b"[0]," * 1_000_000 + b"[0]]}", "request body too large"),
        ):
            response = await client.post("/cancer/feedback", content=body)
            assert response.status_code in (400, 413) and message in response.json()["error"]
        missing = await client.get("/cancer/nowhere")
        assert missing.status_code == 404 and "POST /predict" in missing.json()["error"]
        good = await post(client, "/cancer/predict", {"instances": ROWS[:2]})
        assert good.status_code == 200
    assert await env.replica_ids("cancer") == before


async def test_version_endpoint_describes_live_versions(env: ServeEnv) -> None:
    await env.update("cancer", canary=("2", 0.25))
    await asyncio.sleep(1)
    async with env.client(timeout=30) as client:
        body = (await client.get("/cancer/version")).json()
    assert body["version"] == "1"
    assert body["versions"] == [
        {"version": "1", "role": "live", "app": "cancer--1", "weight": 0.75},
        {"version": "2", "role": "canary", "weight": 0.25},
    ]
    assert body["model"]["n_features"] == 30 and body["model"]["classes"] == [0, 1]
    assert body["model"]["sha256"] == env.store.get("breast-cancer", "1").meta.sha256


async def test_metrics_reach_rays_metrics_endpoint(env: ServeEnv) -> None:
    async with env.client(timeout=30) as client:
        body = (await post(client, "/cancer/predict", {"instances": ROWS[:20]})).json()
        await asyncio.sleep(0.5)
        labels = [
            {"request_id": r, "label": int(y)}
            for r, y in zip(body["request_ids"], Y_TEST[:20], strict=True)
        ]
        assert (await post(client, "/cancer/feedback", labels)).status_code == 200
    url = f"http://{env.head.address}:{env.head.metrics_port}/metrics"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    text = ""
    async with httpx.AsyncClient(timeout=10) as client:
        while loop.time() < deadline:
            text = (await client.get(url)).text
            if re.search(r'mlops_rows\S*\{[^}]*app="cancer"', text) and re.search(
                r'mlops_model_score\S*\{[^}]*app="cancer"', text
            ):
                break
            await asyncio.sleep(1)
    assert re.search(labelled("mlops_rows", app="cancer", version="1", role="live"), text), (
        "row counter missing, or without its version label"
    )
    assert re.search(
        labelled("mlops_model_score", app="cancer", version="1", metric="accuracy"), text
    ), "monitor gauges missing, or without their version label"
    assert "ray_serve_deployment_processing_latency_ms" in text  # next to Serve's own


def labelled(metric: str, /, **labels: str) -> str:
    """A regex for a Prometheus sample of `metric` carrying every label given, in any order."""
    wanted = "".join(f'(?=[^}}]*\\b{k}="{re.escape(v)}")' for k, v in labels.items())
    return rf"{metric}\S*\{{{wanted}[^}}]*\}}"


async def labelled_count(client: httpx.AsyncClient, app: str, version: str) -> int:
    summary = (await client.get(f"/{app}/monitor")).json()
    return int(((summary["versions"].get(version) or {}).get("last_n") or {}).get("n", 0))


async def test_labels_previews_and_the_monitor_need_the_apps_key(env: ServeEnv) -> None:
    """Without the key, or with a wrong one: a 401 with a one-line reason, and the labels of
    a poisoning attempt never reach the monitor."""
    async with (
        httpx.AsyncClient(base_url=env.head.serve_url, timeout=30) as anon,
        env.client(timeout=30) as ok,
    ):
        answer = (await anon.post("/cancer/predict", json={"instances": ROWS[:8]})).json()
        before = await labelled_count(ok, "cancer", "1")
        wrong = [
            {"request_id": r, "label": 1 - int(p)}
            for r, p in zip(answer["request_ids"], answer["predictions"], strict=True)
        ]
        attempts = [
            ("POST", "/cancer/feedback", {"json": wrong}),
            ("GET", "/cancer/monitor", {}),
            ("GET", "/cancer/__monitor", {}),
            ("POST", "/cancer/__v/2/predict", {"json": {"instances": ROWS[:1]}}),
            ("GET", "/cancer/__v/2/version", {}),
            ("POST", "/cancer/__v/2/feedback", {"json": wrong}),
        ]
        for headers in ({}, {"Authorization": "Bearer " + "0" * 64}, {"Authorization": "Basic x"}):
            for method, path, kw in attempts:
                response = await anon.request(method, path, headers=headers, **kw)
                assert response.status_code == 401, (path, headers, response.text)
                reason = response.json()["error"]
                assert reason and "\n" not in reason and env.key not in reason
                assert response.headers["www-authenticate"] == "Bearer"
        # With the key, one true label arrives; the wrong ones before it never did.
        right = [{"request_id": answer["request_ids"][0], "label": int(Y_TEST[0])}]
        assert (await ok.post("/cancer/feedback", json=right)).status_code == 200
        assert (await ok.get("/cancer/__monitor")).status_code == 200
        assert (await ok.get("/cancer/__v/2/version")).json()["version"] == "2"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while (now := await labelled_count(ok, "cancer", "1")) == before and loop.time() < deadline:  # noqa: ASYNC110 - polling a count over HTTP
            await asyncio.sleep(0.2)
        assert now == before + 1
        # Predictions stay open unless the app says otherwise.
        assert (await anon.get("/cancer/version")).status_code == 200
        await env.update("acc", auth_predict=True)
        refused = await anon.post("/acc/predict", json={"instances": ROWS[:1]})
        assert refused.status_code == 401
        assert (await ok.post("/acc/predict", json={"instances": ROWS[:1]})).status_code == 200
