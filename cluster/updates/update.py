"""`models update`: from the labels production fed back to a new version, or a reasoned no.

1. The live version (read from the app's first cluster) and the estimator it came from.
2. Its labelled inputs from every node (see gather.py), oldest first.
3. A candidate: incremental (partial_fit) or batch (refit), trained on all but the newest
   records, in a worker thread.
4. Candidate and live version judged on the same newest records and on the stored holdout.
5. Only if accepted: the candidate converted and checked like any import, then written to the
   store in one atomic step (an interruption before it leaves the store as it was).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from cluster.errors import MlopsError, UsageError
from cluster.events import Event
from cluster.inventory import App
from cluster.models.convert import load_estimator
from cluster.models.importer import ImportResult, prepare_version, skops_bytes, store_version
from cluster.models.store import ModelStore
from cluster.provision.observe import observe_host
from cluster.provision.topology import clusters_of
from cluster.rollout.serve_state import AppServe
from cluster.transport import Connections
from cluster.updates.dataset import split_by_time
from cluster.updates.gather import Gathered, GatherProgress, gather
from cluster.updates.train import (
    REHEARSAL,
    Method,
    Verdict,
    batch,
    concat,
    incremental,
    judge,
    primary_metric,
    score,
    stored_holdout,
    stored_rows,
)


@dataclass(frozen=True)
class UpdateOptions:
    """What `models update` was asked for."""

    method: Method = Method.INCREMENTAL
    since_s: float = 86_400.0
    min_records: int = 200
    margin: float = 0.01
    held_out_share: float = 0.2
    parent: str | None = None  # the version to update from; None: the one the app serves


@dataclass(frozen=True)
class UpdateStep(Event):
    """A phase of the update: live, gather, train, judge, store."""

    app: str
    phase: str
    detail: str


@dataclass(frozen=True)
class UpdateJudged(Event):
    """The candidate and the live version side by side, and the verdict."""

    app: str
    method: str
    parent: str
    trained_on: int
    held_out: int
    verdict: Verdict


@dataclass(frozen=True)
class UpdateFinished(Event):
    """stored (a new version), not_better (nothing stored) or failed (nothing stored)."""

    app: str
    outcome: str
    parent: str
    version: str | None
    detail: str


async def live_version(connections: Connections, app: App) -> str:
    """The version the app's first cluster serves (an edge fleet's hosts agree after a swap)."""
    cluster = clusters_of(connections.inventory, connections.inventory.targets[app.target])[0]
    head = await observe_host(connections, cluster.head)
    state = await AppServe(connections, cluster, head.layout, app).read()
    if state.live is None:
        raise UsageError(f"{app.name} is not deployed on {cluster.id}: run `mlops-tui apply` first")
    return state.live


async def update_model(
    connections: Connections, store: ModelStore, app: App, options: UpdateOptions
) -> AsyncIterator[Event]:
    """The update's events, UpdateFinished last (MlopsError for what stops it early)."""
    parent = options.parent or await live_version(connections, app)
    stored = store.get(app.model, parent)
    kept = store.source(app.model, parent)
    if kept is None:
        raise UsageError(
            f"{app.model}:{parent} has no estimator kept in {store.root} (imported before "
            "estimators were kept, or skops could not save it): import it again to update it"
        )
    estimator = await asyncio.to_thread(load_estimator, kept)
    how = "serves" if options.parent is None else "is updated from"
    yield UpdateStep(app.name, "live", f"{app.name} {how} {app.model}:{parent} "
                     f"({type(estimator).__name__}); method {options.method}")  # fmt: skip
    since = time.time() - options.since_s
    gathered, item = Gathered(), None
    async for item in gather(connections, app, since):
        if isinstance(item, GatherProgress):
            yield item
        else:
            gathered = item
    nodes = ", ".join(f"{n}: {c}" for n, c in sorted(gathered.per_node.items())) or "none"
    yield UpdateStep(app.name, "gather", f"{len(gathered.rows)} labelled records ({nodes}; "
                     f"{gathered.duplicates} duplicates dropped)")  # fmt: skip
    split = split_by_time(gathered.rows, stored.meta, options.held_out_share, options.min_records)
    per_node = gathered.per_node
    del gathered, item  # the records as read (a list per row): the split's columns hold them now
    schema = stored.meta.schema
    n_train, n_held = len(split.train), len(split.held_out)
    # The rows the live version was fitted on, when the store has them: batch refits on them
    # too, and the candidate's own training data is them plus the new records either way.
    base = await asyncio.to_thread(
        stored_rows, store.training(app.model, parent), stored, "training data"
    )
    if options.method is Method.INCREMENTAL:
        candidate = await asyncio.to_thread(incremental, estimator, split.train, schema, 0, base)
        how = f"incremental (partial_fit) on the {n_train} older records" + (
            f", rehearsing {min(len(base), REHEARSAL * n_train)} of the rows "
            f"{app.model}:{parent} was fitted on"
            if base is not None
            else ""
        )
    else:
        candidate = await asyncio.to_thread(batch, estimator, split.train, schema, base)
        how = f"batch (refit) on the {n_train} older records" + (
            f" and the {len(base)} rows {app.model}:{parent} was fitted on"
            if base is not None
            else f" alone ({app.model}:{parent}'s training data was not kept)"
        )
    yield UpdateStep(app.name, "train", f"{how}; the newest {n_held} held out to judge on")
    holdout = stored_holdout(stored)  # judged on, then the new version's own holdout
    verdict = await asyncio.to_thread(
        _judge, estimator, candidate, split.held_out, holdout, stored.meta, options
    )
    yield UpdateJudged(app.name, str(options.method), parent, n_train, n_held, verdict)
    if not verdict.accepted:
        yield UpdateFinished(
            app.name, "not_better", parent, None, verdict.reason + "; nothing stored"
        )
        return
    lineage = {
        "method": str(options.method), "parent": parent,
        "window": [split.window[0], split.window[1]],
        "records": {"trained_on": n_train, "held_out": n_held, "per_node": per_node,
                    "parent_rows": len(base) if base else 0},
    }  # fmt: skip
    source = f"models update {app.name} ({options.method} from {app.model}:{parent})"
    training = concat(base, split.train) if base is not None else split.train
    prepared = await asyncio.to_thread(
        _prepare, app.model, candidate, holdout, source, lineage, training
    )
    result: ImportResult = store_version(store, prepared)  # one atomic write, not interruptible
    yield UpdateStep(app.name, "store", f"{app.model}:{result.version} "
                     f"({'new' if result.created else 'identical to an existing version'})")  # fmt: skip
    yield UpdateFinished(app.name, "stored", parent, result.version, verdict.reason)


def _prepare(
    name: str, candidate: Any, holdout: Any, source: str, lineage: dict[str, Any], training: Any
) -> Any:
    data = skops_bytes(candidate)
    if data is None:
        raise MlopsError("skops cannot save the candidate; nothing stored")
    origin = {"path": source, "sha256": hashlib.sha256(data).hexdigest()}
    return prepare_version(
        name, candidate, holdout, origin, source, lineage, kept=data, training=training
    )


def _judge(
    live: Any, candidate: Any, held: Any, holdout: Any, meta: Any, options: UpdateOptions
) -> Verdict:
    schema, task = meta.schema, meta.task
    live_new, cand_new = score(live, held, schema, task), score(candidate, held, schema, task)
    live_h = score(live, holdout, schema, task) if holdout is not None else None
    cand_h = score(candidate, holdout, schema, task) if holdout is not None else None
    return judge(primary_metric(task), live_new, cand_new, live_h, cand_h, options.margin)
