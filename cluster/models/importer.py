"""`models import`: skops (or trusted pickle) -> ONNX -> parity check -> a new immutable version."""

from __future__ import annotations

import csv
import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cluster.models.convert import check_parity, load_estimator, task_of, to_onnx_bytes
from cluster.models.errors import ModelError
from cluster.models.profile import holdout_metrics, reference_histograms
from cluster.models.store import ModelStore, check_name
from serving.artifacts import FORMAT

LABEL_COLUMNS = ("label", "target", "y")
HOLDOUT_ROWS = 500
SYNTHETIC_ROWS = 256


@dataclass(frozen=True)
class Sample:
    """Rows to check parity on; with labels, they also give holdout metrics."""

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list[str] | None
    source: str


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

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "path": str(self.path)}


def read_sample_csv(path: Path, n_features: int) -> Sample:
    """A CSV with a header; a column named label/target/y is the ground truth."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: cannot read sample: {exc}") from None
    if len(rows) < 2:
        raise ModelError(f"{path}: the sample needs a header line and at least one row")
    header = [h.strip() for h in rows[0]]
    label_idx = next((i for i, h in enumerate(header) if h.lower() in LABEL_COLUMNS), None)
    feature_idx = [i for i in range(len(header)) if i != label_idx]
    if len(feature_idx) != n_features:
        raise ModelError(
            f"{path}: {len(feature_idx)} feature columns, but the model expects {n_features}"
        )
    X = np.empty((len(rows) - 1, n_features), dtype=np.float64)
    labels: list[str] = []
    for r, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ModelError(f"{path}:{r}: {len(row)} columns, the header has {len(header)}")
        try:
            X[r - 2] = [float(row[i]) for i in feature_idx]
        except ValueError as exc:
            raise ModelError(f"{path}:{r}: {exc}") from None
        if not np.isfinite(X[r - 2]).all():
            j = feature_idx[int(np.argmin(np.isfinite(X[r - 2])))]
            raise ModelError(
                f"{path}:{r}: column '{header[j]}' is {row[j].strip()!r}: "
                "NaN and infinity are not valid features"
            )
        if label_idx is not None:
            if not _finite_or_text(row[label_idx]):
                raise ModelError(
                    f"{path}:{r}: label '{header[label_idx]}' is {row[label_idx].strip()!r}: "
                    "NaN and infinity are not valid labels"
                )
            labels.append(row[label_idx])
    y = _labels(labels) if label_idx is not None else None
    return Sample(X, y, [header[i] for i in feature_idx], str(path))


def _finite_or_text(value: str) -> bool:
    """A class name, or a number that is finite ("nan" and "inf" parse as floats: refused)."""
    try:
        return math.isfinite(float(value))
    except ValueError:
        return True


def _labels(raw: list[str]) -> np.ndarray:
    try:
        values = [float(v) for v in raw]
    except ValueError:
        return np.asarray(raw)
    if all(v.is_integer() for v in values):
        return np.asarray([int(v) for v in values])
    return np.asarray(values)


SYNTHETIC = "synthetic"


def synthetic_sample(n_features: int, seed: int = 0) -> Sample:
    """Without a sample, parity is still checked on random rows (no holdout metrics then, and
    no drift reference: random rows say nothing about the data the model will see)."""
    rng = np.random.default_rng(seed)
    return Sample(rng.normal(size=(SYNTHETIC_ROWS, n_features)) * 10, None, None, SYNTHETIC)


def import_model(
    store: ModelStore,
    source: Path,
    name: str,
    sample: Sample | None = None,
    estimator: Any = None,
    *,
    trust_pickle: bool = False,
) -> ImportResult:
    """Convert, check parity and store; pass `estimator` when the caller already loaded it.
    A pickle or joblib `source` is loaded only with `trust_pickle` (see load_estimator)."""
    check_name(name, "model name")
    if estimator is None:
        estimator = load_estimator(source, trust_pickle=trust_pickle)
    n_features = int(estimator.n_features_in_)
    task = task_of(estimator, source)
    synthetic = sample is None
    sample = sample or synthetic_sample(n_features)
    if sample.X.shape[1] != n_features:
        raise ModelError(
            f"{sample.source}: {sample.X.shape[1]} features, the model expects {n_features}"
        )
    onnx_bytes = to_onnx_bytes(estimator, n_features, source)
    parity = check_parity(estimator, onnx_bytes, sample.X, task, source)
    sha = hashlib.sha256(onnx_bytes).hexdigest()
    metrics = holdout_metrics(task, estimator, sample.X, sample.y) if sample.y is not None else {}
    existing = store.find_identical(name, sha)
    if existing is not None:
        found = store.get(name, existing)
        return ImportResult(
            name,
            existing,
            False,
            found.path,
            sha,
            task,
            parity.rows,
            parity.max_proba_diff,
            metrics,
        )
    names = getattr(estimator, "feature_names_in_", None)
    feature_names = [str(n) for n in names] if names is not None else sample.feature_names
    classes = [_plain(c) for c in estimator.classes_] if task == "classifier" else None
    meta = {
        "format": FORMAT,
        "sha256": sha,
        "task": task,
        "input": {"n_features": n_features, "feature_names": feature_names, "dtype": "float32"},
        "classes": classes,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": {
            "path": str(source),
            "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
            "estimator": _describe(estimator),
        },
        "parity": {
            "rows": parity.rows,
            "sample": sample.source,
            "max_proba_diff": parity.max_proba_diff,
        },
        "metrics": metrics,
        # Drift is measured against real rows only; without them the monitor says
        # "not available: no reference sample" instead of warning about random noise.
        "reference": None if synthetic else reference_histograms(sample.X, feature_names),
    }
    holdout = None
    if sample.y is not None:
        k = min(HOLDOUT_ROWS, len(sample.X))
        holdout = {"X": sample.X[:k].tolist(), "y": [_plain(v) for v in sample.y[:k]]}
    version = store.add(name, onnx_bytes, meta, holdout)
    return ImportResult(
        name,
        version,
        True,
        store.root / name / version,
        sha,
        task,
        parity.rows,
        parity.max_proba_diff,
        metrics,
    )


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _describe(estimator: Any) -> str:
    steps = getattr(estimator, "steps", None)
    if steps:
        return "Pipeline(" + ", ".join(type(s).__name__ for _, s in steps) + ")"
    return type(estimator).__name__
