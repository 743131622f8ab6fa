"""What a fitted estimator takes as input, read from the estimator itself: its columns (the
names it was fitted with), which of them are categories (those its OneHotEncoder or
OrdinalEncoder were fitted on with strings), the categories seen in training, and what an
unseen one does. A sample is then read with exactly those types."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cluster.models.errors import ModelError
from serving.instances import Batch
from serving.schema import Column, InputSchema, Kind, Layout, Unknown

LABEL_COLUMNS = ("label", "target", "y")
ENCODERS = ("OneHotEncoder", "OrdinalEncoder")


@dataclass(frozen=True)
class Sample:
    """Rows to check parity on, as the model was fitted: numbers as float64 (NaN where
    missing), categories as strings (None where missing); with labels, they also give
    holdout metrics."""

    columns: dict[str, np.ndarray]
    y: np.ndarray | None
    source: str

    @classmethod
    def from_array(
        cls, X: np.ndarray, y: np.ndarray | None, names: list[str] | None, source: str
    ) -> Sample:
        names = names or [f"f{j}" for j in range(X.shape[1])]
        data = np.asarray(X, dtype=np.float64)
        return cls({n: data[:, j] for j, n in enumerate(names)}, y, source)

    @classmethod
    def from_rows(
        cls, rows: list[Any], schema: InputSchema, y: np.ndarray | None, source: str
    ) -> Sample:
        """Rows as requests send them (lists in the schema's order, or records), None where
        missing: a holdout.json, or the inputs the monitor logged."""
        columns: dict[str, np.ndarray] = {}
        for j, column in enumerate(schema.columns):
            values = [r[column.name] if isinstance(r, dict) else r[j] for r in rows]
            if column.kind is Kind.CATEGORY:
                columns[column.name] = np.asarray(values, dtype=object)
            else:
                columns[column.name] = np.asarray(
                    [math.nan if v is None else v for v in values], dtype=np.float64
                )
        return cls(columns, y, source)

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def take(self, rows: np.ndarray) -> Sample:
        """These rows (indices), in that order."""
        y = self.y[rows] if self.y is not None else None
        return Sample({k: v[rows] for k, v in self.columns.items()}, y, self.source)

    def head(self, rows: int) -> Sample:
        y = self.y[:rows] if self.y is not None else None
        return Sample({k: v[:rows] for k, v in self.columns.items()}, y, self.source)

    def batch(self, schema: InputSchema) -> Batch:
        """The rows as a replica holds them after parsing a request (float32 numbers)."""
        n = len(self)
        numbers = [self.columns[c.name] for c in schema.columns if c.kind is Kind.NUMBER]
        texts = [self.columns[c.name] for c in schema.columns if c.kind is Kind.CATEGORY]
        return Batch(
            np.column_stack(numbers).astype(np.float32)
            if numbers
            else np.empty((n, 0), np.float32),
            np.column_stack(texts).astype(object) if texts else np.empty((n, 0), object),
        )

    def records(self, schema: InputSchema, rows: int) -> list[dict[str, Any]]:
        """The first rows as request records (null where missing)."""
        out = []
        for i in range(min(rows, len(self))):
            record: dict[str, Any] = {}
            for c in schema.columns:
                value = self.columns[c.name][i]
                if c.kind is Kind.NUMBER:
                    record[c.name] = None if math.isnan(value) else float(value)
                else:
                    record[c.name] = value
            out.append(record)
        return out


def fitted_input(estimator: Any, sample: Sample, schema: InputSchema) -> Any:
    """What scikit-learn's predict takes for these rows: a DataFrame with the fitted column
    names when the estimator was fitted on one (an array then makes it warn), else an array."""
    if getattr(estimator, "feature_names_in_", None) is None:
        return np.column_stack([sample.columns[n] for n in schema.names])
    import pandas as pd

    frame = {}
    for c in schema.columns:
        values = sample.columns[c.name]
        if c.kind is Kind.CATEGORY:  # pandas' own missing value for text columns
            values = np.where(values == None, np.nan, values).astype(object)  # noqa: E711
        frame[c.name] = values
    return pd.DataFrame(frame, columns=schema.names)


def infer_schema(estimator: Any, names_hint: list[str] | None = None) -> InputSchema:
    """The input schema the estimator was fitted with (nullable is decided later, by trying)."""
    fitted = getattr(estimator, "feature_names_in_", None)
    n = int(estimator.n_features_in_)
    names = [str(x) for x in fitted] if fitted is not None else None
    names = names or (names_hint if names_hint and len(names_hint) == n else None)
    names = names or [f"f{j}" for j in range(n)]
    categories = dict(_encoded_columns(estimator, names))
    if categories and fitted is None:
        raise ModelError(
            "the model encodes categories but was fitted on an array without column names; "
            "fit it on a pandas DataFrame so each column can be named in requests"
        )
    columns = []
    for name in names:
        found = categories.get(name)
        if found is None:
            columns.append(Column(name))
        else:
            cats, unknown = found
            columns.append(Column(name, Kind.CATEGORY, False, cats, unknown))
    layout = Layout.MATRIX if all(c.kind is Kind.NUMBER for c in columns) else Layout.COLUMNS
    return InputSchema(tuple(columns), layout)


def _encoded_columns(
    estimator: Any, names: list[str]
) -> list[tuple[str, tuple[tuple[str, ...], Unknown]]]:
    """(column, (categories, unknown)) for every input column a text encoder was fitted on,
    found through Pipelines (their first step sees the input) and ColumnTransformers."""
    kind = type(estimator).__name__
    if kind == "Pipeline":
        first = estimator.steps[0][1]
        return [] if first in (None, "passthrough") else _encoded_columns(first, names)
    if kind == "ColumnTransformer":
        out = []
        indices = getattr(estimator, "_transformer_to_input_indices", {})
        for name, transformer, _ in estimator.transformers_:
            if transformer in ("drop", "passthrough"):
                continue
            selected = [names[i] for i in indices.get(name, ())]
            out += _encoded_columns(transformer, selected)
        return out
    if kind in ENCODERS and hasattr(estimator, "categories_"):
        unknown = (
            Unknown.ERROR
            if getattr(estimator, "handle_unknown", "error") == "error"
            else Unknown.IGNORE
        )
        out = []
        for name, cats in zip(names, estimator.categories_, strict=False):
            if cats.dtype.kind in "OUS":  # strings: a categorical column (numbers stay numbers)
                seen = tuple(str(c) for c in cats if isinstance(c, str))
                out.append((name, (seen, unknown)))
        return out
    return []


def read_sample_csv(path: Path, schema: InputSchema) -> Sample:
    """A CSV with a header naming the model's columns (any order; a column named
    label/target/y is the ground truth). Each column is read with its type in the schema; an
    empty cell is a missing value."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: cannot read sample: {exc}") from None
    if len(rows) < 2:
        raise ModelError(f"{path}: the sample needs a header line and at least one row")
    header = [h.strip() for h in rows[0]]
    label_idx = next((i for i, h in enumerate(header) if h.lower() in LABEL_COLUMNS), None)
    features = [i for i in range(len(header)) if i != label_idx]
    position = _positions(path, header, features, schema)
    columns: dict[str, np.ndarray] = {}
    body = rows[1:]
    for r, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ModelError(f"{path}:{r}: {len(row)} columns, the header has {len(header)}")
    for column in schema.columns:
        i = position[column.name]
        cells = [row[i].strip() for row in body]
        # Keyed by the header's name: an array-fitted model's columns are named after it.
        if column.kind is Kind.CATEGORY:
            columns[header[i]] = np.asarray([c if c else None for c in cells], dtype=object)
        else:
            columns[header[i]] = _numbers(path, header[i], cells)
    y = None
    if label_idx is not None:
        labels = [row[label_idx] for row in body]
        for r, value in enumerate(labels, start=2):
            if not _finite_or_text(value):
                raise ModelError(
                    f"{path}:{r}: label '{header[label_idx]}' is {value.strip()!r}: "
                    "NaN and infinity are not valid labels"
                )
        y = _labels(labels)
    return Sample(columns, y, str(path))


def _positions(
    path: Path, header: list[str], features: list[int], schema: InputSchema
) -> dict[str, int]:
    """Where each of the model's columns is in the CSV: by name when the header names them
    all, else by position (an array-fitted model's f0, f1, ...)."""
    if len(features) != len(schema.columns):
        raise ModelError(
            f"{path}: {len(features)} feature columns, but the model expects {len(schema.columns)}"
            + ("" if schema.numeric else f" ({', '.join(schema.names)})")
        )
    named = {header[i]: i for i in features}
    if all(name in named for name in schema.names):
        return {name: named[name] for name in schema.names}
    if not schema.numeric:
        missing = [n for n in schema.names if n not in named]
        raise ModelError(f"{path}: no column named {missing[0]!r} in the header")
    return {name: i for name, i in zip(schema.names, features, strict=True)}


def _numbers(path: Path, name: str, cells: list[str]) -> np.ndarray:
    out = np.empty(len(cells), dtype=np.float64)
    for r, cell in enumerate(cells):
        if not cell:
            out[r] = np.nan  # an empty cell: a missing value
            continue
        try:
            value = float(cell)
        except ValueError:
            raise ModelError(
                f"{path}:{r + 2}: column '{name}' is {cell!r}, not a number "
                "(the model was fitted with numbers in it)"
            ) from None
        if not math.isfinite(value):
            raise ModelError(
                f"{path}:{r + 2}: column '{name}' is {cell!r}: NaN and infinity are not valid "
                "features; leave the cell empty for a missing value"
            )
        out[r] = value
    return out


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
