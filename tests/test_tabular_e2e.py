"""Tabular models end to end on the local deployment (`connection: local`, real Ray and Serve):
the three models people actually train (a ColumnTransformer pipeline with a one-hot city, a
HistGradientBoosting and an imputing pipeline, both fitted with 5% missing values) import,
deploy, answer record-shaped requests with scikit-learn's own predictions, refuse each kind
of bad record with a 400 naming the column, and swap blue/green under load without a failed
request (the three swaps at once: different apps on one cluster).

The churn example (an SGD pipeline that logs its inputs), served by two apps, closes the
update loop: labelled traffic from after a price rise its v1 never saw lowers its live
accuracy; `models update --method batch --swap` on one and `--method incremental --swap` on
the other (at once) each train a version better on fresh customers and swap it in; an update
whose candidate is not better (exit 5), and one stopped with Ctrl-C, leave the model store
byte for byte as it was."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import shutil
import signal
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from cluster.inventory import load_inventory
from cluster.models.churn import drifted_sample, make_churn_examples
from cluster.models.importer import import_model
from cluster.models.store import ModelStore
from cluster.models.tabular import infer_schema, read_sample_csv
from cluster.rollout.events import Strategy, SwapFinished, SwapOptions, SwapOutcome
from cluster.rollout.history import History, history_path
from cluster.rollout.swap import swap
from cluster.telemetry.frame import MonitorSummary
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
from tests.support.tls import trusting_ca

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ADDRESS = "127.0.0.2"  # the local host's default address on Linux
CHURN_APPS = {"churn": "batch", "churn-inc": "incremental"}  # app -> its update's method
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
        make_churn_examples(self.store)  # churn 1 (good, SGD), 2 (bad)

    def write(self) -> None:
        ray = ", ".join(f"{k}: {v}" for k, v in self.ports.items())
        apps = "".join(
            f"  {app}:\n    target: local\n    model: {app}:1\n    replicas: 1\n"
            f"    num_cpus: 0.1\n    route: /{app}\n"
            + ("    log_features: true\n" if app == "people-ct" else "")
            for app in MODELS
        )
        apps += "".join(  # the churn example twice: one updated by each method
            f"  {name}:\n    target: local\n    model: churn:1\n    replicas: 1\n"
            f"    num_cpus: 0.1\n    route: /{name}\n    log_features: true\n"
            for name in CHURN_APPS
        )
        self.path.write_text(
            f"defaults:\n  remote_dir: {self.remote}\n  model_store: {self.store.root}\n"
            f"  python: {sys.executable}\n"
            f"hosts:\n  laptop:\n    connection: local\n    address: {ADDRESS}\n    ray: {{{ray}}}\n"
            "targets:\n  local:\n    topology: single\n    host: laptop\n"
            f"apps:\n{apps}"
        )

    def url(self, app: str, path: str = "/predict") -> str:
        return f"https://{ADDRESS}:{self.ports['serve_port']}/{app}{path}"

    def key(self, app: str) -> dict[str, str]:
        """The app's key (labels and the monitor need it), as a header."""
        ring = json.loads((self.remote / "auth" / "local.keys").read_text())
        return {"Authorization": f"Bearer {ring['apps'][app][0]['key']}"}

    def snapshot(self) -> dict[str, str]:
        """Every file and directory of the model store, with its bytes' sha256."""
        return {
            str(p.relative_to(self.store.root)): hashlib.sha256(p.read_bytes()).hexdigest()
            if p.is_file()
            else "dir"
            for p in sorted(self.store.root.rglob("*"))
        }

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
        # tls: auto (the default): the first apply makes the CA beside the inventory.
        with trusting_ca(deployment.path.parent / "tls", make=False):
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
    # The first apply made the inventory's CA (its key private) and turned HTTPS on: plain
    # HTTP to the Serve port gets no answer.
    assert stat.S_IMODE((local.path.parent / "tls" / "ca.key").stat().st_mode) == 0o600
    async with httpx.AsyncClient(timeout=30) as client:
        with pytest.raises(httpx.HTTPError):
            await client.get(local.url("people-ct").replace("https:", "http:"))
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


async def labelled(
    client: httpx.AsyncClient, local: Local, app: str, rows: list[Any], labels: list[Any] | None
) -> list[Any]:
    """Rows to the app in requests of 100, each answer labelled with `labels` (with None: with
    what the app answered, as if it were always right); the predictions."""
    predictions: list[Any] = []
    for start in range(0, len(rows), 100):
        response = await predict(client, local.url(app), rows[start : start + 100])
        assert response.status_code == 200, response.text
        answer = response.json()
        predictions += answer["predictions"]
        truth = answer["predictions"] if labels is None else labels[start : start + 100]
        feedback = [{"request_id": rid, "label": y} for rid, y in
                    zip(answer["request_ids"], truth, strict=True)]  # fmt: skip
        response = await client.post(local.url(app, "/feedback"), json=feedback,
                                     headers=local.key(app))  # fmt: skip
        assert response.status_code == 200, response.text
    return predictions


async def labelled_update(client: httpx.AsyncClient, local: Local) -> None:
    """people-ct logs its inputs; its holdout comes back labelled with what v1 answered (v1
    is right on every one): no candidate can be better, so `models update` stores nothing,
    exits 5, and the model store is byte for byte as it was."""
    rows = local.holdout("people-ct")
    await labelled(client, local, "people-ct", rows, None)
    before = local.snapshot()
    code, events = await run_cli(
        "models", "update", "people-ct", "-i", str(local.path), "--method", "batch",
        "--min-records", "100", "--json",
    )  # fmt: skip
    assert code == 5, events[-3:]
    [judged] = [e for e in events if e["event"] == "update_judged"]
    assert judged["trained_on"] + judged["held_out"] == len(rows), judged  # every record
    assert judged["verdict"]["live_new"] == 1.0 and not judged["verdict"]["accepted"], judged
    assert events[-1]["outcome"] == "not_better", events[-1]
    assert "nothing stored" in events[-1]["detail"], events[-1]
    assert local.snapshot() == before


async def test_drifted_labels_lower_accuracy_and_updates_of_both_kinds_win_it_back(
    local: Local,
) -> None:
    code, events = await run_cli("apply", "-i", str(local.path), "--yes", "--json")
    assert code == 0, events[-3:]  # nothing to do after the test before (alone: deploys)
    schema = local.store.get("churn", "1").meta.schema
    drifted, fresh = drifted_sample(1200, seed=11), drifted_sample(600, seed=12)
    assert drifted.y is not None and fresh.y is not None
    fresh_rows = fresh.records(schema, len(fresh))
    async with httpx.AsyncClient(timeout=30) as client:
        for app in CHURN_APPS:
            await labelled(client, local, app, drifted.records(schema, 1200), drifted.y.tolist())
        old = accuracy(await answers(client, local, "churn", fresh_rows, "1"), fresh.y)
        response = await client.get(local.url("churn", "/__monitor"), headers=local.key("churn"))
        assert response.status_code == 200, response.text
        live = MonitorSummary.from_json(response.json()).versions["1"].last_n
    holdout = local.store.get("churn", "1").meta.raw["metrics"]["accuracy"]
    # The price rise: v1's live accuracy fell well below what its holdout promised.
    assert live.n >= 1000 and live.accuracy is not None, live
    assert live.accuracy < holdout - 0.05, (live.accuracy, holdout)

    # Ctrl-C once the candidate is judged (it is being converted): nothing stored.
    before = local.snapshot()
    proc = await update_process(local, "churn", "batch")
    assert proc.stdout is not None and proc.stderr is not None
    seen = []
    async for line in proc.stdout:
        seen.append(json.loads(line))
        if seen[-1]["event"] == "update_judged":
            assert seen[-1]["verdict"]["accepted"], seen[-1]
            proc.send_signal(signal.SIGINT)
    err = (await proc.stderr.read()).decode()
    assert await asyncio.wait_for(proc.wait(), 60) == 130, (seen[-2:], err[-2000:])
    assert "Traceback" not in err and not any(e["event"] == "update_finished" for e in seen)
    assert local.snapshot() == before

    # Both kinds at once, each with --swap: batch in this process, incremental in its own.
    swap = ("--swap", "--bake", "0s", "--retire-after", "0s", "--yes")  # judged by its gate
    proc = await update_process(local, "churn-inc", "incremental", *swap)
    (code, batch_events), (inc_out, inc_err) = await asyncio.gather(
        run_cli("models", "update", "churn", "-i", str(local.path), "--method", "batch",
                *swap, "--json"),
        proc.communicate(),
    )  # fmt: skip
    assert code == 0, batch_events[-3:]
    assert proc.returncode == 0, inc_err.decode()[-2000:]
    inc_events = [json.loads(line) for line in inc_out.decode().splitlines()]
    said = []
    for app, events in (("churn", batch_events), ("churn-inc", inc_events)):
        method = CHURN_APPS[app]
        [judged] = [e for e in events if e["event"] == "update_judged"]
        verdict = judged["verdict"]
        assert judged["trained_on"] + judged["held_out"] == 1200, judged
        assert verdict["candidate_new"] > verdict["live_new"] + 0.05, (app, verdict)
        assert verdict["candidate_holdout"] >= verdict["live_holdout"] - 0.01, (app, verdict)
        [stored] = [e for e in events if e["event"] == "update_finished"]
        assert stored["outcome"] == "stored", stored
        version = stored["version"]
        assert events[-1]["event"] == "swap_finished" and events[-1]["outcome"] == "promoted"
        lineage = local.store.get("churn", version).meta.raw["lineage"]
        assert lineage["method"] == method and lineage["parent"] == "1", lineage
        assert lineage["records"]["parent_rows"] == 2100, lineage  # v1's own rows, used too
        assert local.store.training("churn", version) is not None  # kept for the next one
        async with httpx.AsyncClient(timeout=30) as client:
            new = accuracy(await answers(client, local, app, fresh_rows, version), fresh.y)
        said.append(f"v{version} ({method}) {new:.3f}")
        assert new > old + 0.05, (app, old, new)
    print(
        f"\nUPDATE churn after the price rise, on {len(fresh_rows)} fresh customers: v1 "
        f"{old:.3f}, {', '.join(said)}; v1's holdout {holdout:.3f}, live {live.accuracy:.3f}"
    )


async def update_process(
    local: Local, app: str, method: str, *more: str
) -> asyncio.subprocess.Process:
    """`models update APP --method METHOD --json` as its own process."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "console.cli", "models", "update", app, "-i", str(local.path),
        "--method", method, *more, "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def answers(
    client: httpx.AsyncClient, local: Local, app: str, rows: list[Any], version: str
) -> list[Any]:
    """The app's predictions for `rows` (no labels fed back), all from `version`."""
    predictions = []
    for start in range(0, len(rows), 100):
        response = await predict(client, local.url(app), rows[start : start + 100])
        assert response.status_code == 200, response.text[:300]
        assert response.json()["version"] == version, response.text[:300]
        predictions += response.json()["predictions"]
    return predictions


def accuracy(predictions: list[Any], truth: Any) -> float:
    return float(np.mean(np.asarray(predictions) == np.asarray(truth)))


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
