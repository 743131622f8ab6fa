"""Checks that go through the Serve proxies, as clients do: a version answers real predictions
on a route, a route has moved on every node, a holdout's scores."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx

from cluster.errors import MlopsError
from cluster.inventory import Host
from cluster.keys import bearer, cluster_app_key
from cluster.models.store import StoredVersion
from cluster.provision.topology import RayCluster
from cluster.tls.client import serve_client
from cluster.transport import Connections
from serving.schema import Kind


def holdout(version: StoredVersion) -> dict[str, Any] | None:
    """The labelled rows stored with a version, or None when it was imported without labels."""
    try:
        data: dict[str, Any] = json.loads((Path(version.path) / "holdout.json").read_text())
    except FileNotFoundError:
        return None
    return data if data.get("X") else None


def probe_rows(version: StoredVersion, labelled: dict[str, Any] | None) -> list[Any]:
    """Rows to send to a new version: its holdout (lists of numbers or records), else one row
    it accepts: zeros, and a model with categories gets a record with its first category."""
    if labelled:
        rows: list[Any] = labelled["X"]
        return rows
    schema = version.meta.schema
    if schema.numeric:
        return [[0.0] * version.meta.n_features]
    record: dict[str, Any] = {}
    for column in schema.columns:
        if column.kind is Kind.CATEGORY:
            record[column.name] = column.categories[0] if column.categories else None
        else:
            record[column.name] = 0.0
    return [record]


class Refused(MlopsError):
    """The version answered, with a 4xx: the rows do not fit it (retrying cannot help)."""


async def predict_until(
    connections: Connections,
    cluster: RayCluster,
    app: str,
    route: str,
    rows: list[Any],
    version: str,
    *,
    max_rows: int = 1024,
    attempts: int = 20,
) -> dict[str, Any]:
    """POST the rows to ROUTE/predict through the head's proxy (at most `max_rows` a request,
    the app's limit) until `version` answers; its predictions for every row, in order. The
    app's key goes with them: a preview route asks for it."""
    headers = bearer(await cluster_app_key(connections, cluster, app))
    chunks = [rows[i : i + max_rows] for i in range(0, len(rows), max_rows)] or [rows]
    async with serve_client(
        connections, cluster.head, cluster.target, timeout=30, headers=headers
    ) as client:
        first = await _first_answer(client, route, chunks[0], version, attempts)
        answers = [first]
        for chunk in chunks[1:]:
            answers.append(await _post(client, route, chunk, version))
    merged: dict[str, Any] = {"version": version, "predictions": []}
    for answer in answers:
        merged["predictions"] += answer["predictions"]
        if "probabilities" in answer:
            merged.setdefault("probabilities", []).extend(answer["probabilities"])
    return merged


async def _first_answer(
    client: httpx.AsyncClient, route: str, rows: list[Any], version: str, attempts: int
) -> dict[str, Any]:
    """Retried while the route is not (yet) served by `version`; a 4xx is final."""
    last = "no answer"
    for attempt in range(attempts):
        try:
            return await _post(client, route, rows, version)
        except Refused:
            raise
        except (MlopsError, httpx.HTTPError, ValueError) as exc:
            last = str(exc) or type(exc).__name__
        await asyncio.sleep(0.25 * (attempt + 1))
    raise MlopsError(f"{route}: version {version} does not answer predictions ({last})")


async def _post(
    client: httpx.AsyncClient, route: str, rows: list[Any], version: str
) -> dict[str, Any]:
    response = await client.post(f"{route}/predict", json={"instances": rows})
    if 400 <= response.status_code < 500 and response.status_code != 404:
        raise Refused(
            f"{route}: version {version} refused the rows: HTTP {response.status_code} {response.text[:200]}"
        )
    if response.status_code != 200:
        raise MlopsError(f"HTTP {response.status_code}: {response.text[:200]}")
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        raise MlopsError(f"{route}: an answer that is not JSON: {response.text[:200]}") from None
    if body.get("version") != version:
        raise MlopsError(f"answered by version {body.get('version')}, not {version}")
    return body


def scores(
    version: StoredVersion, labelled: dict[str, Any], answer: dict[str, Any]
) -> dict[str, float]:
    """The same scores the live monitor computes, on the holdout rows and their labels."""
    # scikit-learn takes a second to import: only a swap with a holdout pays for it.
    from serving.monitor.scores import classifier_scores, regressor_scores

    labels = labelled["y"]
    if version.meta.is_classifier:
        found = classifier_scores(
            labels, answer["predictions"], answer.get("probabilities"), version.meta.classes
        )
    else:
        found = regressor_scores(labels, answer["predictions"])
    return {k: float(v) for k, v in found.items() if v is not None}


async def wait_live(
    connections: Connections, cluster: RayCluster, route: str, version: str, timeout: float = 30
) -> None:
    """Until every node's proxy answers ROUTE/version with `version`: only then is a route
    change done for clients, wherever they connect."""

    async def one(host: Host) -> None:
        async with serve_client(connections, host, cluster.target, timeout=5) as client:
            deadline = time.perf_counter() + timeout
            seen = "no answer"
            while time.perf_counter() < deadline:
                try:
                    response = await client.get(f"{route}/version")
                    seen = (
                        str(response.json().get("version"))
                        if response.status_code == 200
                        else f"HTTP {response.status_code}"
                    )
                except (httpx.HTTPError, ValueError) as exc:
                    # A certificate that does not verify says so here, not only "ConnectError".
                    seen = f"{type(exc).__name__} ({exc})" if str(exc) else type(exc).__name__
                if seen == version:
                    return
                await asyncio.sleep(0.05)
        raise MlopsError(
            f"{host.name}: {route} did not move to version {version} within {timeout:g}s "
            f"(it answers {seen})"
        )

    try:
        async with asyncio.TaskGroup() as group:
            for host in cluster.hosts:
                group.create_task(one(host))
    except ExceptionGroup as group:
        raise group.exceptions[0] from None  # the first node that did not move says why
