"""What a model version carries besides its graph: holdout metrics and reference histograms
(the baseline that live drift is measured against)."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

BINS = 10


def reference_histograms(X: np.ndarray, names: list[str] | None) -> dict[str, Any]:
    """Per feature: quantile bin edges from the sample and the share of rows in each bin."""
    features = []
    for j in range(X.shape[1]):
        column = X[:, j].astype(np.float64)
        inner = np.unique(np.quantile(column, np.linspace(0, 1, BINS + 1)[1:-1]))
        counts = np.bincount(np.searchsorted(inner, column, side="right"), minlength=len(inner) + 1)
        features.append(
            {
                "name": names[j] if names else f"f{j}",
                "edges": [float(e) for e in inner],  # inner edges; the outer bins are open
                "fractions": [float(c) / len(column) for c in counts],
            }
        )
    return {"bins": BINS, "rows": int(X.shape[0]), "features": features}


def holdout_metrics(task: str, estimator: Any, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from sklearn import metrics

    x32 = X.astype(np.float32)
    pred = estimator.predict(x32)
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
    if hasattr(estimator, "predict_proba") and len(set(y.tolist())) > 1:
        proba = estimator.predict_proba(x32)
        # A class absent from the holdout leaves AUC undefined; the other metrics stand.
        with contextlib.suppress(ValueError):
            out["roc_auc"] = float(
                metrics.roc_auc_score(y, proba[:, 1])
                if binary
                else metrics.roc_auc_score(y, proba, multi_class="ovr", labels=classes)
            )
    return out
