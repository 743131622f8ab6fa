"""`models import`: skops (or trusted pickle) -> ONNX -> parity check -> a new immutable version."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cluster.models.convert import (
    Parity,
    Session,
    check_parity,
    load_estimator,
    quiet,
    task_of,
    to_onnx_bytes,
)
from cluster.models.errors import ModelError
from cluster.models.input_checks import settle_schema
from cluster.models.profile import holdout_metrics, reference_histograms
from cluster.models.store import ModelStore, check_name
from cluster.models.tabular import Sample, infer_schema, read_sample_csv
from serving.artifacts import FORMAT
from serving.schema import InputSchema, Kind

__all__ = ["ImportResult", "Sample", "import_model", "read_sample_csv"]

HOLDOUT_ROWS = 500
SYNTHETIC_ROWS = 256


@dataclass(frozen=True)
class ImportResult:
    """The version written (or found identical), and the evidence it is right."""

    name: str
    version: str
    created: bool
    path: Path
    sha256: str
    task: str
    parity_rows: int
    max_proba_diff: float | None
    metrics: dict[str, float]
    schema: InputSchema

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "path": str(self.path), "schema": self.schema.to_json()}


SYNTHETIC = "synthetic"


def synthetic_sample(schema: InputSchema, seed: int = 0) -> Sample:
    """Without a sample, parity is still checked on random rows (no holdout metrics then, and
    no drift reference: random rows say nothing about the data the model will see); a
    category column gets its training categories at random."""
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for column in schema.columns:
        if column.kind is Kind.CATEGORY and column.categories:
            columns[column.name] = rng.choice(
                np.asarray(column.categories, dtype=object), SYNTHETIC_ROWS
            )
        else:
            columns[column.name] = rng.normal(size=SYNTHETIC_ROWS) * 10
    return Sample(columns, None, SYNTHETIC)


@dataclass(frozen=True)
class Prepared:
    """A version converted and checked, not yet in the store (writing it is one atomic step)."""

    name: str
    onnx_bytes: bytes
    meta: dict[str, Any]
    holdout: dict[str, Any] | None
    source: bytes | None  # the estimator as skops bytes
    training: dict[str, Any] | None  # the rows it was fitted on, as holdout.json holds rows
    task: str
    parity: Parity
    metrics: dict[str, float]
    schema: InputSchema

    @property
    def sha256(self) -> str:
        return str(self.meta["sha256"])


def import_model(
    store: ModelStore,
    source: Path,
    name: str,
    sample: Sample | None = None,
    estimator: Any = None,
    *,
    trust_pickle: bool = False,
    training: Sample | None = None,
) -> ImportResult:
    """Convert, check parity and store; pass `estimator` when the caller already loaded it.
    A pickle or joblib `source` is loaded only with `trust_pickle` (see load_estimator).
    `training`: the labelled rows it was fitted on, kept for `models update --method batch`."""
    check_name(name, "model name")
    if estimator is None:
        estimator = load_estimator(source, trust_pickle=trust_pickle)
    origin = {
        "path": str(source),
        "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
    }
    prepared = prepare_version(name, estimator, sample, origin, source, training=training)
    return store_version(store, prepared)


def prepare_version(
    name: str,
    estimator: Any,
    sample: Sample | None,
    origin: dict[str, Any],
    source: Path | str,
    lineage: dict[str, Any] | None = None,
    kept: bytes | None = None,
    training: Sample | None = None,
) -> Prepared:
    """Everything a version is, checked (conversion, parity, schema, metrics), in memory.
    `origin` says where the estimator came from (a file and its sha256); `lineage` where a
    version trained by `models update` came from (an import is its own origin); `kept`: the
    estimator already saved as skops bytes (else it is saved here); `training`: the rows it
    was fitted on, if known."""
    where = Path(str(source))
    task = task_of(estimator, where)
    try:
        schema = infer_schema(estimator, sample.names if sample else None)
    except ModelError as exc:
        raise ModelError(f"{source}: {exc}") from None
    synthetic = sample is None
    if sample is None:
        sample = synthetic_sample(schema)
    elif sample.names != schema.names:
        if set(sample.names) != set(schema.names):
            raise ModelError(
                f"{sample.source}: columns {', '.join(sample.names)}; the model expects "
                f"{len(schema.names)}: {', '.join(schema.names)}"
            )
        sample = Sample({n: sample.columns[n] for n in schema.names}, sample.y, sample.source)
    onnx_bytes, schema = to_onnx_bytes(estimator, schema, where)
    session = Session(onnx_bytes, schema)
    parity = check_parity(estimator, session, sample, schema, task, where)
    schema = settle_schema(estimator, session, sample, schema, task)
    sha = hashlib.sha256(onnx_bytes).hexdigest()
    metrics = holdout_metrics(task, estimator, sample, schema) if sample.y is not None else {}
    classes = [_plain(c) for c in estimator.classes_] if task == "classifier" else None
    meta = {
        "format": FORMAT,
        "sha256": sha,
        "task": task,
        "input": {
            "n_features": len(schema.columns),
            "feature_names": schema.names,
            "dtype": "float32",
            **schema.to_json(),
        },
        "classes": classes,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": {**origin, "estimator": _describe(estimator)},
        "parity": {
            "rows": parity.rows,
            "sample": sample.source,
            "max_proba_diff": parity.max_proba_diff,
        },
        "metrics": metrics,
        "lineage": lineage or {"method": "import", "parent": None},
        # Drift is measured against real rows only; without them the monitor says
        # "not available: no reference sample" instead of warning about random noise.
        "reference": None if synthetic else reference_histograms(sample, schema),
    }
    holdout = rows_json(sample, schema, HOLDOUT_ROWS) if sample.y is not None else None
    if training is not None and training.names != schema.names:
        raise ModelError(
            f"{training.source}: columns {', '.join(training.names)}; the model expects "
            f"{', '.join(schema.names)}"
        )
    return Prepared(
        name,
        onnx_bytes,
        meta,
        holdout,
        kept if kept is not None else skops_bytes(estimator),
        rows_json(training, schema) if training is not None and training.y is not None else None,
        task,
        parity,
        metrics,
        schema,
    )


def store_version(store: ModelStore, prepared: Prepared) -> ImportResult:
    """Write the version (or find the identical one already there): one atomic step."""
    p = prepared
    existing = store.find_identical(p.name, p.sha256)
    created = existing is None
    version = existing or store.add(p.name, p.onnx_bytes, p.meta, p.holdout, p.source, p.training)
    return ImportResult(
        p.name, version, created, store.root / p.name / version, p.sha256, p.task,
        p.parity.rows, p.parity.max_proba_diff, p.metrics, p.schema,
    )  # fmt: skip


def skops_bytes(estimator: Any) -> bytes | None:
    """The estimator as skops bytes (kept for `models update`), or None when skops cannot
    save one of its types: the version is still served, it just cannot be updated."""
    import skops.io as sio

    try:
        with quiet():
            return bytes(sio.dumps(estimator))
    # skops raises whatever its per-type savers raise for a type it does not know.
    except Exception:  # noqa: BLE001
        return None


def rows_json(sample: Sample, schema: InputSchema, limit: int | None = None) -> dict[str, Any]:
    """Labelled rows as holdout.json holds them: records, or lists of numbers for an
    all-numeric model (as every client of one sends), and their labels."""
    assert sample.y is not None
    k = len(sample) if limit is None else min(limit, len(sample))
    rows: list[Any]
    if schema.numeric:  # one array to lists: no dict per row (100,000 rows of updates)
        matrix = np.column_stack([sample.columns[n][:k] for n in schema.names])
        rows = matrix.tolist()
        if np.isnan(matrix).any():
            rows = [[None if v != v else v for v in row] for row in rows]
    else:
        rows = sample.records(schema, k)
    return {"X": rows, "y": np.asarray(sample.y[:k]).tolist()}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _describe(estimator: Any) -> str:
    steps = getattr(estimator, "steps", None)
    if steps:
        return "Pipeline(" + ", ".join(type(s).__name__ for _, s in steps) + ")"
    return type(estimator).__name__
