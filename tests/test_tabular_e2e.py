"""Tabular models end to end on the local deployment (`connection: local`, real Ray and Serve):
the three models people actually train (a ColumnTransformer pipeline with a one-hot city, a
HistGradientBoosting and an imputing pipeline, both fitted with 5% missing values) import,
deploy, answer record-shaped requests with scikit-learn's own predictions, refuse each kind
of bad record with a 400 naming the column, and swap blue/green under load without a failed
request."""

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

from cluster.models.importer import import_model
from cluster.models.store import ModelStore
from cluster.models.tabular import infer_schema, read_sample_csv
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
    try:
        for app in MODELS:
            code, events = await run_cli(
                "swap", app, "--to", "2", "-i", str(local.path), "--strategy", "bluegreen",
                "--bake", "1s", "--retire-after", "0s", "--yes", "--json",
            )  # fmt: skip
            assert code == 0, events[-3:]
            assert events[-1]["outcome"] == "promoted", events[-1]
    finally:
        stop.set()
        results = {app: await task for app, task in loads.items()}
    for app, result in results.items():
        assert result.failed == 0, (app, result.failures[:5])
        assert result.versions["1"] > 0 and result.versions["2"] > 0, (app, result.versions)


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
