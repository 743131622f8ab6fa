"""Gathered labelled inputs as the rows a model trains and is judged on: checked against the
version's input schema and classes (a clear message names the request otherwise), then
split by time: the newest share is held out to judge the candidate on."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from cluster.errors import MlopsError
from cluster.models.tabular import Sample
from cluster.updates.gather import LabelledInput
from serving.artifacts import ModelMeta


class UpdateInputError(MlopsError):
    """The gathered records cannot train this model; the message says which and why."""


@dataclass(frozen=True)
class Split:
    """Older records to train on, the newest to judge on."""

    train: Sample
    held_out: Sample
    window: tuple[float, float]  # label times of the oldest and newest record used


def to_sample(rows: list[LabelledInput], meta: ModelMeta, source: str) -> Sample:
    """The records as a Sample in the schema's columns, labels checked against the model."""
    schema = meta.schema
    n = len(schema.columns)
    labels: list[Any] = []
    classes = set(meta.classes) if meta.classes is not None else None
    for row in rows:
        if not isinstance(row.features, list) or len(row.features) != n:
            got = (
                len(row.features) if isinstance(row.features, list) else type(row.features).__name__
            )
            raise UpdateInputError(
                f"record {row.request_id}: {got} features, the model takes {n} "
                f"({', '.join(schema.names[:6])}{', ...' if n > 6 else ''})"
            )
        if classes is not None and row.label not in classes:
            raise UpdateInputError(
                f"record {row.request_id}: label {row.label!r} is not one of the model's classes "
                f"({', '.join(map(repr, sorted(classes, key=str)))})"
            )
        if classes is None and not (
            isinstance(row.label, int | float) and math.isfinite(row.label)
        ):
            raise UpdateInputError(f"record {row.request_id}: label {row.label!r} is not a number")
        labels.append(row.label)
    return Sample.from_rows([r.features for r in rows], schema, np.asarray(labels), source)


def split_by_time(
    rows: list[LabelledInput], meta: ModelMeta, held_out_share: float, min_records: int
) -> Split:
    """The oldest (1 - share) to train on, the newest share to judge on (rows oldest first)."""
    if len(rows) < min_records:
        raise UpdateInputError(
            f"{len(rows)} labelled records with their inputs, fewer than --min-records "
            f"{min_records}: wait for more labels, widen --since, or lower --min-records"
        )
    cut = len(rows) - max(1, int(len(rows) * held_out_share))
    train = to_sample(rows[:cut], meta, "production records")
    held = to_sample(rows[cut:], meta, "newest production records")
    return Split(train, held, (rows[0].ts, rows[-1].ts))
