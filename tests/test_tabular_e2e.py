"""Tabular models end to end on the local deployment (`connection: local`, real Ray and Serve):
the three models people actually train (a ColumnTransformer pipeline with a one-hot city, a
HistGradientBoosting and an imputing pipeline, both fitted with 5% missing values) import,
deploy, answer record-shaped requests with scikit-learn's own predictions, refuse each kind
of bad record with a 400 naming the column, and swap blue/green under load without a failed
request (the three swaps at once: different apps on one cluster)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from cluster.inventory import load_inventory
from cluster.models.importer import import_model
from cluster.models.store import ModelStore
from cluster.models.tabular import infer_schema, read_sample_csv
from cluster.rollout.events import Strategy, SwapFinished, SwapOptions, SwapOutcome
from cluster.rollout.history import History, history_path
from cluster.rollout.swap import swap
from cluster.transport import Connections
from console.cli import main
from tests.support.leaks import run_temp_dir
from tests.support.load import run_load
from tests.support.ports import free_port
from tests.support.ray_node import stop_processes_under
from tests.support.tabular import (
    column_transformer_model,
    hist_gradient_boosting_model,
    imputer_model,
    save,
    write_sample,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ADDRESS = "127.0.0.2"  # the local host's default address on Linux
# app -> (v1, v2): the second a slightly different fit of the same model, to swap to.
MODELS: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
    "people-ct": (column_transformer_model, lambda: column_transformer_model(C=0.5)),
    "people-hgb": (hist_gradient_boosting_model, lambda: hist_gradient_boosting_model(max_iter=40)),
    "people-imputer": (imputer_model, lambda: imputer_model(C=0.5)),
}


class Local:
    """The store, the inventory and the local deployment's ports."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.remote = run_temp_dir("mt-")
        self.store = ModelStore(root / "models")
        self.ports = {
            k: free_port(ADDRESS) for k in ("port", "dashboard_port", "metrics_port", "serve_port")
        }
        self.fitted: dict[tuple[str, str], tuple[Any, Any, np.ndarray]] = {}
        self.path = root / "inventory.yaml"

    def import_all(self) -> None:
        for app, makers in MODELS.items():
            for version, make in enumerate(makers, start=1):
                model, test, y_test = make()
                self.fitted[app, str(version)] = (model, test, y_test)
                source = save(model, self.root / f"{app}-{version}.skops")
                csv = write_sample(test, y_test, self.root / f"{app}-{version}.csv")
                sample = read_sample_csv(csv, infer_schema(model))
                assert import_model(self.store, source, app, sample).version == str(version)

    def write(self) -> None:
        ray = ", ".join(f"{k}: {v}" for k, v in self.ports.items())
        apps = "".join(
            f"  {app}:\n    target: local\n    model: {app}:1\n    replicas: 1\n"
            f"    num_cpus: 0.1\n    route: /{app}\n"
            + ("    log_features: true\n" if app == "people-ct" else "")
            for app in MODELS
        )
        self.path.write_text(
            f"defaults:\n  remote_dir: {self.remote}\n  model_store: {self.store.root}\n"
            f"  python: {sys.executable}\n"
            f"hosts:\n  laptop:\n    connection: local\n    address: {ADDRESS}\n    ray: {{{ray}}}\n"
            "targets:\n  local:\n    topology: single\n    host: laptop\n"
            f"apps:\n{apps}"
        )

    def url(self, app: str, path: str = "/predict") -> str:
        return f"http://{ADDRESS}:{self.ports['serve_port']}/{app}{path}"

    def holdout(self, app: str, version: str = "1") -> list[Any]:
        rows: list[Any] = json.loads(
            (self.store.root / app / version / "holdout.json").read_text()
        )["X"]
        return rows


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    deployment = Local(tmp_path_factory.mktemp("tabular"))
    deployment.import_all()
    deployment.write()
    try:
        yield deployment
    finally:  # destroy is tested elsewhere: stopping our Ray by its directory is enough here
        stop_processes_under(deployment.remote / "ray")
        shutil.rmtree(deployment.remote, ignore_errors=True)


async def run_cli(*argv: str) -> tuple[int, list[dict[str, Any]]]:
    """main() in a thread (it runs its own event loop), with its JSON lines."""
    buffer = io.StringIO()

    def call() -> int:
        with contextlib.redirect_stdout(buffer):
            return main(list(argv))

    code = await asyncio.to_thread(call)
    lines = buffer.getvalue().splitlines()
    return code, [json.loads(line) for line in lines if line.startswith("{")]


async def predict(client: httpx.AsyncClient, url: str, rows: list[Any]) -> httpx.Response:
    return await client.post(url, json={"instances": rows})


async def test_three_tabular_models_serve_refuse_and_swap(local: Local) -> None:
    code, events = await run_cli("apply", "-i", str(local.path), "--yes", "--json")
    assert code == 0, events[-3:]
    async with httpx.AsyncClient(timeout=30) as client:
        # Record-shaped requests answer what scikit-learn predicts on the same rows.
        for app in MODELS:
            model, test, _ = local.fitted[app, "1"]
            rows = local.holdout(app)
            got: list[Any] = []
            for start in range(0, len(rows), 100):
                response = await predict(client, local.url(app), rows[start : start + 100])
                assert response.status_code == 200, response.text
                got += response.json()["predictions"]
            assert got == model.predict(test).tolist()[: len(rows)], app
        await refusals(client, local)
        await labelled_update(client, local)

    # Blue/green swaps, one app after another, while every app takes records.
    stop = asyncio.Event()
    loads = {
        app: asyncio.create_task(
            run_load(
                local.url(app),
                {"instances": local.holdout(app)[:8]},
                concurrency=2,
                stop=stop,
                max_seconds=300,
                pause_s=0.02,
            )
        )
        for app in MODELS
    }
    try:  # all three at once, as operators swapping different apps do: each write of the
        # cluster's Serve config holds its lock, so none drops another's change
        outcomes = await asyncio.gather(*(swap_to_2(local, app) for app in MODELS))
        assert outcomes == [SwapOutcome.PROMOTED] * len(MODELS), outcomes
    finally:
        stop.set()
        results = {app: await task for app, task in loads.items()}
    for app, result in results.items():
        assert result.failed == 0, (app, result.failures[:5])
        assert result.versions["1"] > 0 and result.versions["2"] > 0, (app, result.versions)


async def swap_to_2(local: Local, app: str) -> SwapOutcome | None:
    """A blue/green swap to version 2 (the operation itself, as `swap --json` runs it)."""
    inventory = load_inventory(local.path)
    options = SwapOptions(
        to_version="2", strategy=Strategy.BLUEGREEN, bake_s=0.0, retire_after_s=0.0
    )
    finished = None
    async with Connections(inventory) as connections:
        history = History(history_path(local.path))
        async for event in swap(connections, local.store, inventory.apps[app], options, history):
            finished = event if isinstance(event, SwapFinished) else finished
    return finished.outcome if finished is not None else None


async def labelled_update(client: httpx.AsyncClient, local: Local) -> None:
    """people-ct logs its inputs: its holdout, sent as records and labelled, comes back through
    `models update` (gathered from the node, judged against the live version). Whatever the
    verdict, the store holds a new version only when it says `stored`."""
    from cluster.updates.train import Method
    from cluster.updates.update import UpdateFinished, UpdateJudged, UpdateOptions, update_model

    rows = local.holdout("people-ct")
    labels = json.loads((local.store.root / "people-ct" / "1" / "holdout.json").read_text())["y"]
    ring = json.loads((local.remote / "auth" / "local.keys").read_text())
    auth = {"Authorization": f"Bearer {ring['apps']['people-ct'][0]['key']}"}
    for start in range(0, len(rows), 100):
        answer = (await predict(client, local.url("people-ct"), rows[start : start + 100])).json()
        feedback = [{"request_id": rid, "label": y} for rid, y in
                    zip(answer["request_ids"], labels[start : start + 100], strict=True)]  # fmt: skip
        response = await client.post(
            local.url("people-ct", "/feedback"), json=feedback, headers=auth
        )
        assert response.status_code == 200, response.text
    before = sorted(p.name for p in (local.store.root / "people-ct").iterdir())
    inventory = load_inventory(local.path)
    events = []
    async with Connections(inventory) as connections:
        options = UpdateOptions(Method.BATCH, since_s=3600, min_records=100, margin=0.05)
        async for event in update_model(
            connections, local.store, inventory.apps["people-ct"], options
        ):
            events.append(event)
    [judged] = [e for e in events if isinstance(e, UpdateJudged)]
    assert judged.trained_on + judged.held_out == len(rows), judged  # every labelled record
    finished = events[-1]
    assert isinstance(finished, UpdateFinished), finished
    after = sorted(p.name for p in (local.store.root / "people-ct").iterdir())
    if finished.outcome == "stored":
        assert finished.version == "3" and after == sorted([*before, "3"]), (after, finished)
        lineage = local.store.get("people-ct", "3").meta.raw["lineage"]
        assert lineage["method"] == "batch" and lineage["parent"] == "1", lineage
    else:
        assert finished.outcome == "not_better" and after == before, finished


async def refusals(client: httpx.AsyncClient, local: Local) -> None:
    """Every kind of bad record is a 400 that names the column; what the models accept is
    accepted (null where a model takes a missing value, an unseen city it ignores)."""
    good = local.holdout("people-ct")[0]
    bad = {
        "has no column 'city'": {k: v for k, v in good.items() if k != "city"},
        "has an unknown column \"cty\" (did you mean 'city'?)": {**good, "cty": "paris"},
        "['age'] is not a number: \"31\" is a string": {**good, "age": "31"},
        "['age'] is null, but the model does not accept a missing value in 'age'": {
            **good,
            "age": None,
        },
        "['city'] is 75: 'city' is a category, send a string": {**good, "city": 75},
    }
    for message, record in bad.items():
        response = await predict(client, local.url("people-ct"), [good, record])
        assert response.status_code == 400, (message, response.text)
        assert f"instances[1]{message}" in response.json()["error"] or (
            f"instances[1] {message}" in response.json()["error"]
        ), response.text
    response = await predict(client, local.url("people-ct"), [[31, 52.0, "paris"]])
    assert response.status_code == 400 and "must be an object of named columns" in response.text
    accepted = [{**good, "city": "tokyo"}, {**good, "city": None}]
    response = await predict(client, local.url("people-ct"), accepted)
    assert response.status_code == 200, response.text
    for app in ("people-hgb", "people-imputer"):
        rows = [{"age": None, "income": 40.5}, [31, None], [None, None]]
        response = await predict(client, local.url(app), rows)
        assert response.status_code == 200, response.text
        response = await predict(client, local.url(app), [{"age": "old", "income": 1}])
        assert response.status_code == 400 and "['age'] is not a number" in response.text
    version = (await client.get(local.url("people-ct", "/version"))).json()
    assert [c["name"] for c in version["model"]["input"]["columns"]] == ["age", "income", "city"]
