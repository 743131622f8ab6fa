"""What the served model may be sent, decided by trying it: a column accepts a missing value
only where scikit-learn predicts with one there and the ONNX graph predicts the same; an
unseen category is accepted only where both do the same with it. Anything else is refused
with a 400 by the replica, so the graph is never asked what it was not shown to answer."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from cluster.models.convert import Session, compare, predictions
from cluster.models.tabular import Sample
from serving.schema import Column, InputSchema, Kind, Unknown

PROBE_ROWS = 16
UNSEEN = "\x00unseen category\x00"


def settle_schema(
    estimator: Any, session: Session, sample: Sample, schema: InputSchema, task: str
) -> InputSchema:
    """The schema with `nullable` and `unknown` as the model actually behaves."""
    rows = sample.head(PROBE_ROWS)
    columns = []
    for column in schema.columns:
        nullable = _agrees(estimator, session, _with(rows, column, None), schema, task)
        unknown = column.unknown
        if column.kind is Kind.CATEGORY and unknown is Unknown.IGNORE:
            ok = _agrees(estimator, session, _with(rows, column, UNSEEN), schema, task)
            unknown = Unknown.IGNORE if ok else Unknown.ERROR
        columns.append(replace(column, nullable=nullable, unknown=unknown))
    return replace(schema, columns=tuple(columns))


def _with(sample: Sample, column: Column, value: str | None) -> Sample:
    """The rows with `column` set to `value` (None: missing) in every row."""
    n = len(sample)
    if column.kind is Kind.NUMBER:
        filled = np.full(n, np.nan)
    else:
        filled = np.asarray([value] * n, dtype=object)
    return Sample({**sample.columns, column.name: filled}, None, sample.source)


def _agrees(
    estimator: Any, session: Session, sample: Sample, schema: InputSchema, task: str
) -> bool:
    try:
        labels, probas = predictions(estimator, sample, schema, task)
    # scikit-learn refusing the rows (NaN where it takes none, a category it does not know)
    # is the answer sought here: the column does not take that value.
    except (ValueError, TypeError):
        return False
    try:
        outputs = session.run(sample)
    except Exception:  # noqa: BLE001 - onnxruntime's own error types: the graph cannot take it
        return False
    return compare(labels, probas, outputs, task) is None
