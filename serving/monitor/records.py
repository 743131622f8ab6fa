"""Prediction records by column, from a replica's buffer to the monitor's SQLite file.

A replica keeps each request's rows as columns (ids, predictions, one probability array) and
sends its monitor one block per flush. Building, pickling and unpacking one Python object per
row was most of what the monitor cost at 64-row requests; columns move through `zip`,
`np.concatenate` and `executemany` in C instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PredictionRecord:
    """One row's prediction: how tests and tools write records (replicas send blocks)."""

    request_id: str
    version: str
    role: str  # "live", "canary" or "shadow"
    prediction: Any
    proba: list[float] | None
    ts: float
    # The row's input, in the schema's column order, when the app logs features
    # (`log_features: true`): what `models update` trains on once the row is labelled.
    features: list[Any] | None = None


@dataclass(frozen=True)
class PredictionBlock:
    """Rows of predictions by column. Every list has one entry per row; `probas` is a
    (rows, classes) float64 array, or None for a regressor."""

    request_ids: list[str]
    versions: list[str]
    roles: list[str]
    predictions: list[Any]
    probas: np.ndarray | None
    ts: list[float]
    features: list[list[Any]] | None = None  # per row, when the app logs features

    def __len__(self) -> int:
        return len(self.request_ids)

    @classmethod
    def of_request(
        cls,
        request_ids: list[str],
        version: str,
        role: str,
        predictions: list[Any],
        probas: np.ndarray | None,
        ts: float,
        features: list[list[Any]] | None = None,
    ) -> PredictionBlock:
        """One request's rows: they share version, role and time."""
        n = len(request_ids)
        if len(predictions) != n or (probas is not None and len(probas) != n):
            raise ValueError(f"{n} request ids for {len(predictions)} predictions")
        if probas is not None:
            probas = np.ascontiguousarray(probas, dtype=np.float64)
        return cls(request_ids, [version] * n, [role] * n, predictions, probas, [ts] * n, features)

    def __getitem__(self, rows: slice | list[int]) -> PredictionBlock:
        """These rows: a slice (the buffer's bound), or a list of positions in their order
        (a block of several versions, split by version)."""

        def pick(column: list[Any]) -> list[Any]:
            return column[rows] if isinstance(rows, slice) else [column[i] for i in rows]

        return PredictionBlock(
            pick(self.request_ids), pick(self.versions), pick(self.roles),
            pick(self.predictions), None if self.probas is None else self.probas[rows],
            pick(self.ts), None if self.features is None else pick(self.features),
        )  # fmt: skip


def concat(blocks: Sequence[PredictionBlock]) -> list[PredictionBlock]:
    """The blocks joined into as few as their columns allow (probabilities of one width, or
    none; features for every row, or none): one, from a single replica."""
    out: list[PredictionBlock] = []
    run: list[PredictionBlock] = []
    for block in blocks:
        if run and _shape(block) != _shape(run[0]):
            out.append(_join(run))
            run = []
        run.append(block)
    if run:
        out.append(_join(run))
    return out


def from_records(records: Sequence[PredictionRecord]) -> list[PredictionBlock]:
    """Per-row records as blocks (tests and tools write records)."""
    return concat(
        [
            PredictionBlock(
                [r.request_id],
                [r.version],
                [r.role],
                [r.prediction],
                None if r.proba is None else np.asarray([r.proba], dtype=np.float64),
                [r.ts],
                None if r.features is None else [r.features],
            )
            for r in records
        ]
    )


def _shape(block: PredictionBlock) -> tuple[int | None, bool]:
    return (None if block.probas is None else block.probas.shape[1], block.features is not None)


def _join(blocks: list[PredictionBlock]) -> PredictionBlock:
    if len(blocks) == 1:
        return blocks[0]

    def column(name: str) -> list[Any]:
        return list(chain.from_iterable(getattr(b, name) for b in blocks))

    first = blocks[0]
    probas = None if first.probas is None else np.concatenate([b.probas for b in blocks])
    return PredictionBlock(
        column("request_ids"),
        column("versions"),
        column("roles"),
        column("predictions"),
        probas,
        column("ts"),
        None if first.features is None else column("features"),
    )


class RecordBuffer:
    """What a replica holds for its monitor, one block per request: at most `limit` rows,
    the oldest dropped first (the caller counts them)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._blocks: list[PredictionBlock] = []
        self._rows = 0

    def __len__(self) -> int:
        return self._rows

    def add(self, block: PredictionBlock) -> int:
        """Keep a request's rows; how many old rows had to go to stay within the limit."""
        self._blocks.append(block)
        self._rows += len(block)
        return self._bound()

    def take(self) -> list[PredictionBlock]:
        """Everything held, as few blocks as possible; the buffer is empty after."""
        blocks, self._blocks, self._rows = self._blocks, [], 0
        return concat(blocks)

    def give_back(self, blocks: list[PredictionBlock]) -> int:
        """Blocks whose send failed go back in front; how many rows that pushed out."""
        self._blocks[:0] = blocks
        self._rows += sum(len(b) for b in blocks)
        return self._bound()

    def _bound(self) -> int:
        excess = self._rows - self.limit
        if excess <= 0:
            return 0
        dropped = 0
        while dropped < excess:
            first = self._blocks[0]
            if len(first) <= excess - dropped:
                self._blocks.pop(0)
                dropped += len(first)
            else:
                self._blocks[0] = first[excess - dropped :]
                dropped = excess
        self._rows -= dropped
        return dropped
