"""`{"instances": [...]}` checked against the model's input schema: rows as records
(`{"age": 31, "city": "paris"}`, every model) or as lists of numbers (all-numeric models).
Anything that does not fit is a BadRequest naming the row, the column and the problem."""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from serving.schema import Column, InputSchema, Kind, Unknown
from serving.validation import BadRequest

_NUMBER = (int, float)
_NUMBER_TYPES = frozenset(_NUMBER)  # exactly: bool is an int subclass, and refused
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Batch:
    """Validated rows: numeric columns as float32 (NaN where missing), categorical columns as
    strings (None where missing), each in schema order within its kind."""

    numbers: np.ndarray  # (rows, numeric columns) float32
    texts: np.ndarray  # (rows, categorical columns) object
    key: tuple[tuple[str, str], ...] | None = None  # the schema it was parsed for (InputSchema.key)

    def __len__(self) -> int:
        return int(self.numbers.shape[0])

    @staticmethod
    def concat(batches: list[Batch]) -> Batch:
        return Batch(
            np.concatenate([b.numbers for b in batches]),
            np.concatenate([b.texts for b in batches]),
            batches[0].key,
        )

    def records(self, schema: InputSchema) -> list[list[Any]]:
        """Each row as a list in the schema's column order (None where missing): what the
        monitor logs when the app logs its inputs."""
        numbers = self.numbers.tolist()
        texts = self.texts.tolist()
        out = []
        for i in range(len(self)):
            n = t = 0
            row: list[Any] = []
            for column in schema.columns:
                if column.kind is Kind.CATEGORY:
                    row.append(texts[i][t])
                    t += 1
                else:
                    value = numbers[i][n]
                    row.append(None if value != value else value)  # NaN: missing
                    n += 1
            out.append(row)
        return out

    @staticmethod
    def of_numbers(rows: np.ndarray) -> Batch:
        """A batch of an all-numeric model from a float32 matrix (benchmarks, tests)."""
        return Batch(rows, np.empty((len(rows), 0), dtype=object))


class ForwardedMismatch(ValueError):
    """Rows parsed by one version that another version cannot take as they are."""


class InstanceParser:
    """Parses request bodies for one schema (built once per replica)."""

    def __init__(self, schema: InputSchema, max_rows: int) -> None:
        self.schema = schema
        self.max_rows = max_rows
        self._names = schema.names
        self._known = set(self._names)
        self._number_cols = [c for c in schema.columns if c.kind is Kind.NUMBER]
        self._numeric = schema.numeric
        self._text_cols = [c for c in schema.columns if c.kind is Kind.CATEGORY]
        self._checked = {
            c.name: frozenset(c.categories)
            for c in self._text_cols
            if c.categories is not None and c.unknown is Unknown.ERROR
        }

    def parse(self, payload: Any) -> Batch:
        rows = self._rows(payload)
        plain = self._plain_numbers(rows)
        if plain is not None:
            return plain
        numbers: list[list[Any]] = []
        texts: list[list[Any]] = []
        for i, row in enumerate(rows):
            if isinstance(row, dict):
                self._check_keys(i, row)
                numbers.append(
                    [self._number(i, row[c.name], c, f"['{c.name}']") for c in self._number_cols]
                )
                texts.append([self._text(i, row[c.name], c) for c in self._text_cols])
            elif isinstance(row, list) and self._numeric:
                n = len(self._names)
                if len(row) != n:
                    raise BadRequest(f"instances[{i}] has {len(row)} features, expected {n}")
                numbers.append(
                    [
                        self._number(i, v, c, f"[{j}]")
                        for j, (v, c) in enumerate(zip(row, self._number_cols, strict=True))
                    ]
                )
                texts.append([])
            else:
                raise BadRequest(self._row_shape(i))
        return Batch(
            self._floats(numbers, rows),
            np.asarray(texts, dtype=object).reshape(len(rows), len(self._text_cols)),
            self.schema.key,
        )

    def _plain_numbers(self, rows: list[Any]) -> Batch | None:
        """The usual request, rows that are lists of the right number of ints and floats,
        checked by `map` and `set` in C; None sends anything else through the checks of each
        value, which name what is wrong (a 64-row request spent most of its parsing there)."""
        if not (self._numeric and rows) or set(map(type, rows)) != {list}:
            return None
        if set(map(len, rows)) != {len(self._names)}:
            return None
        if not set(map(type, chain.from_iterable(rows))) <= _NUMBER_TYPES:
            return None
        empty = np.empty((len(rows), 0), dtype=object)
        return Batch(self._floats(rows, rows), empty, self.schema.key)

    def check_forwarded(self, batch: Batch) -> None:
        """A batch another version parsed (a canary's or shadow's share) is read by this
        version only if it has the same columns and holds nothing this version refuses: a
        missing value where it takes none, a category its encoder would fail on. Else
        ForwardedMismatch: the live version answers instead (a canary), or the mirror is
        dropped (a shadow)."""
        if batch.key != self.schema.key:
            raise ForwardedMismatch("the versions take different columns")
        for k, column in enumerate(self._number_cols):
            if not column.nullable and np.isnan(batch.numbers[:, k]).any():
                raise ForwardedMismatch(f"'{column.name}' is missing, which this version refuses")
        for k, column in enumerate(self._text_cols):
            values = batch.texts[:, k]
            if not column.nullable and any(v is None for v in values):
                raise ForwardedMismatch(f"'{column.name}' is missing, which this version refuses")
            allowed = self._checked.get(column.name)
            if allowed is not None and any(v is not None and v not in allowed for v in values):
                raise ForwardedMismatch(f"'{column.name}' holds a category this version refuses")

    # -- shapes -----------------------------------------------------------------------
    def _rows(self, payload: Any) -> list[Any]:
        if not isinstance(payload, dict):
            raise BadRequest("expected a JSON object with an 'instances' list")
        if "instances" not in payload:
            example = self._example()
            raise BadRequest(f"missing 'instances': send {{\"instances\": [{example}, ...]}}")
        rows = payload["instances"]
        if not isinstance(rows, list):
            raise BadRequest("'instances' must be a list of rows")
        if not rows:
            raise BadRequest("'instances' is empty: send at least one row")
        if len(rows) > self.max_rows:
            raise BadRequest(
                f"too many rows: {len(rows)} > limit {self.max_rows}; split the request",
                status=413,
            )
        return rows

    def _example(self) -> str:
        if self.schema.numeric:
            return "[f1, f2, ...]"
        shown = ", ".join(f'"{n}": ...' for n in self._names[:3])
        return "{" + shown + (", ..." if len(self._names) > 3 else "") + "}"

    def _row_shape(self, i: int) -> str:
        n = len(self._names)
        if self.schema.numeric:
            return f"instances[{i}] must be a list of {n} numbers or an object of named columns"
        return (
            f"instances[{i}] must be an object of named columns ({self._list(self._names)}): "
            "this model takes categories, so rows as plain lists are not accepted"
        )

    def _check_keys(self, i: int, row: dict[str, Any]) -> None:
        if len(row) == len(self._names) and all(k in self._known for k in row):
            return
        unknown = [k for k in row if k not in self._known]
        if unknown:
            key = unknown[0]
            close = difflib.get_close_matches(str(key), self._names, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"columns: {self._list(self._names)}"
            raise BadRequest(f"instances[{i}] has an unknown column {_short(key)} ({hint})")
        missing = [n for n in self._names if n not in row]
        raise BadRequest(
            f"instances[{i}] has no column '{missing[0]}'"
            + (f" (and {len(missing) - 1} more missing)" if len(missing) > 1 else "")
            + "; send null for a missing value where the model accepts one"
        )

    @staticmethod
    def _list(names: list[str]) -> str:
        return ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")

    # -- values -----------------------------------------------------------------------
    @staticmethod
    def _number(i: int, value: Any, column: Column, where: str) -> Any:
        if type(value) in _NUMBER:  # bool is an int subclass: refused below
            return value
        at = f"instances[{i}]{where}"
        if value is None:
            if column.nullable:
                return math.nan
            raise BadRequest(
                f"{at} is null, but the model does not accept a missing value in '{column.name}'"
            )
        if isinstance(value, str):
            raise BadRequest(
                f"{at} is not a number: {_short(value)} is a string ('{column.name}' is numeric)"
            )
        raise BadRequest(f"{at} is not a number: {_short(value)}")

    def _text(self, i: int, value: Any, column: Column) -> str | None:
        at = f"instances[{i}]['{column.name}']"
        if isinstance(value, str):
            allowed = self._checked.get(column.name)
            if allowed is not None and value not in allowed:
                raise BadRequest(
                    f"{at} is {_short(value)}, a category the model was not trained on "
                    f"(it knows: {self._list(sorted(allowed))})"
                )
            return value
        if value is None:
            if column.nullable:
                return None
            raise BadRequest(
                f"{at} is null, but the model does not accept a missing value in '{column.name}'"
            )
        cats = column.categories or ()
        such = f" such as {_short(cats[0])}" if cats else ""
        raise BadRequest(
            f"{at} is {_short(value)}: '{column.name}' is a category, send a string{such}"
        )

    def _floats(self, numbers: list[list[Any]], rows: list[Any]) -> np.ndarray:
        if not self._number_cols:
            return np.empty((len(rows), 0), dtype=np.float32)
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # overflow -> inf, reported below
                array = np.asarray(numbers, dtype=np.float32)
        except OverflowError:  # an integer literal too large for any float, e.g. 1e400 written out
            raise BadRequest(f"{self._where_huge(numbers, rows)} is out of float32 range") from None
        finite = np.isfinite(array)
        if finite.all():
            return array
        for i, j in np.argwhere(~finite):
            value = numbers[int(i)][int(j)]
            if (
                isinstance(value, float)
                and math.isnan(value)
                and self._was_null(rows[int(i)], int(j))
            ):
                continue  # a null the column accepts
            raise BadRequest(
                f"instances[{int(i)}]{self._at(rows[int(i)], int(j))} is {_describe(value)}: "
                "NaN and infinity are not valid features"
                + ("; send null for a missing value" if self._number_cols[int(j)].nullable else "")
            )
        return array

    def _was_null(self, row: Any, j: int) -> bool:
        if isinstance(row, dict):
            return row[self._number_cols[j].name] is None
        return bool(row[j] is None)

    def _at(self, row: Any, j: int) -> str:
        return f"['{self._number_cols[j].name}']" if isinstance(row, dict) else f"[{j}]"

    def _where_huge(self, numbers: list[list[Any]], rows: list[Any]) -> str:
        """Where the first integer beyond float32's range is (only looked for after an overflow)."""
        for i, row in enumerate(numbers):
            for j, value in enumerate(row):
                if type(value) is int and abs(value) > _FLOAT32_MAX:
                    return f"instances[{i}]{self._at(rows[i], j)}"
        return "a value"


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _describe(value: Any) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, float) and math.isinf(value):
        return "infinite"
    return "out of float32 range"
