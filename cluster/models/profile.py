"""What a model version carries besides its graph: holdout metrics and reference histograms
(the baseline that live drift is measured against)."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from cluster.models.tabular import Sample
from serving.schema import InputSchema, Kind

BINS = 10


def reference_histograms(sample: Sample, schema: InputSchema) -> dict[str, Any]:
    """Per feature, the buckets live rows are counted in and the share of sample rows in each
    (see serving.drift): a number's quantile bins then "missing"; a category's training
    categories, then "unseen" (none in the sample by definition), then "missing"."""
    features = []
    for column in schema.columns:
        values = sample.columns[column.name]
        if column.kind is Kind.CATEGORY:
            categories = list(column.categories or sorted({v for v in values if v is not None}))
            index = {c: k for k, c in enumerate(categories)}
            found = np.zeros(len(categories) + 2)
            for v in values:
                found[len(categories) + 1 if v is None else index.get(v, len(categories))] += 1
            features.append(
                {
                    "name": column.name,
                    "kind": "category",
                    "categories": categories,
                    "fractions": [float(c) / len(values) for c in found],
                }
            )
            continue
        column_values = values.astype(np.float64)
        present = column_values[~np.isnan(column_values)]
        inner = (
            np.unique(np.quantile(present, np.linspace(0, 1, BINS + 1)[1:-1]))
            if len(present)
            else np.zeros(0)
        )
        counts = np.bincount(
            np.searchsorted(inner, present, side="right"), minlength=len(inner) + 1
        )
        fractions = [float(c) / len(column_values) for c in counts]
        fractions.append(float(len(column_values) - len(present)) / len(column_values))
        features.append(
            {
                "name": column.name,
                "kind": "number",
                "edges": [float(e) for e in inner],  # inner edges; the outer bins are open
                "fractions": fractions,  # the bins, then "missing"
            }
        )
    return {"bins": BINS, "rows": len(sample), "features": features}


def holdout_metrics(
    task: str, estimator: Any, sample: Sample, schema: InputSchema
) -> dict[str, float]:
    from sklearn import metrics

    from cluster.models.convert import predictions

    y = sample.y
    assert y is not None
    pred, proba = predictions(estimator, sample, schema, task)
    if task == "regressor":
        return {
            "mse": float(metrics.mean_squared_error(y, pred)),
            "mae": float(metrics.mean_absolute_error(y, pred)),
        }
    classes = list(estimator.classes_)
    binary = len(classes) == 2
    kw: dict[str, Any] = (
        {"pos_label": classes[1], "average": "binary"} if binary else {"average": "macro"}
    )
    out = {
        "accuracy": float(metrics.accuracy_score(y, pred)),
        "precision": float(metrics.precision_score(y, pred, zero_division=0, **kw)),
        "recall": float(metrics.recall_score(y, pred, zero_division=0, **kw)),
        "f1": float(metrics.f1_score(y, pred, zero_division=0, **kw)),
    }
    if proba is not None and len(set(y.tolist())) > 1:
        # A class absent from the holdout leaves AUC undefined; the other metrics stand.
        with contextlib.suppress(ValueError):
            out["roc_auc"] = float(
                metrics.roc_auc_score(y, proba[:, 1])
                if binary
                else metrics.roc_auc_score(y, proba, multi_class="ovr", labels=classes)
            )
    return out
