"""Model quality over a window of labelled predictions, computed with scikit-learn itself so
the numbers are exactly the ones an operator would get offline.

scikit-learn is imported on first use, not with this module: every model replica imports the
serving package (and Serve imports it again to build each application), but only the monitor
computes scores, and the import costs about a second of CPU each time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def classifier_scores(
    labels: Sequence[Any],
    predictions: Sequence[Any],
    probabilities: Sequence[Sequence[float]] | None,
    classes: Sequence[Any] | None,
) -> dict[str, float | None]:
    """accuracy, precision, recall, F1 (binary for two classes, macro otherwise) and ROC AUC."""
    if not labels:
        return {"accuracy": None, "precision": None, "recall": None, "f1": None, "roc_auc": None}
    from sklearn import metrics

    y_true, y_pred = list(labels), list(predictions)
    known = list(classes) if classes is not None else sorted(set(y_true) | set(y_pred), key=str)
    binary = len(known) == 2
    kw: dict[str, Any] = (
        {"pos_label": known[1], "average": "binary"} if binary else {"average": "macro"}
    )
    out: dict[str, float | None] = {
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "precision": float(metrics.precision_score(y_true, y_pred, zero_division=0, **kw)),
        "recall": float(metrics.recall_score(y_true, y_pred, zero_division=0, **kw)),
        "f1": float(metrics.f1_score(y_true, y_pred, zero_division=0, **kw)),
        "roc_auc": None,
    }
    if probabilities is not None and len(set(y_true)) > 1:
        proba = np.asarray(probabilities, dtype=np.float64)
        try:
            if binary:
                positives = [1 if y == known[1] else 0 for y in y_true]
                out["roc_auc"] = float(metrics.roc_auc_score(positives, proba[:, 1]))
            else:
                out["roc_auc"] = float(
                    metrics.roc_auc_score(
                        y_true, proba, multi_class="ovr", average="macro", labels=known
                    )
                )
        except ValueError:
            out["roc_auc"] = None  # e.g. a class missing from the window
    return out


def regressor_scores(
    labels: Sequence[float], predictions: Sequence[float]
) -> dict[str, float | None]:
    if not labels:
        return {"mse": None, "mae": None}
    from sklearn import metrics

    return {
        "mse": float(metrics.mean_squared_error(labels, predictions)),
        "mae": float(metrics.mean_absolute_error(labels, predictions)),
    }
