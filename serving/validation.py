"""Strict request parsing: bad input is a 400 (or 413) that names the problem, never a 500."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

_NUMBER = (int, float)
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class BadRequest(Exception):
    """A client error (400, 401, 413, or 499 for a client gone mid-body); the message is safe
    to return."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_json(body: bytes) -> Any:
    """The decoded body, or BadRequest: a client's JSON must never cost a 500."""
    if not body:
        raise BadRequest('empty request body: send JSON like {"instances": [[...]]}')
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None
    except RecursionError:  # e.g. "[[[[..." 200,000 deep: the decoder gives up, so do we
        raise BadRequest("malformed JSON: nested too deeply") from None


def parse_instances(payload: Any, n_features: int, max_rows: int) -> np.ndarray:
    """A float32 (rows, n_features) array from {"instances": [[...], ...]}, or BadRequest."""
    if not isinstance(payload, dict):
        raise BadRequest("expected a JSON object with an 'instances' list")
    if "instances" not in payload:
        raise BadRequest("missing 'instances': send {\"instances\": [[f1, f2, ...], ...]}")
    rows = payload["instances"]
    if not isinstance(rows, list):
        raise BadRequest("'instances' must be a list of rows")
    if not rows:
        raise BadRequest("'instances' is empty: send at least one row")
    if len(rows) > max_rows:
        raise BadRequest(
            f"too many rows: {len(rows)} > limit {max_rows}; split the request", status=413
        )
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise BadRequest(f"instances[{i}] must be a list of {n_features} numbers")
        if len(row) != n_features:
            raise BadRequest(f"instances[{i}] has {len(row)} features, expected {n_features}")
        for j, value in enumerate(row):
            if type(value) not in _NUMBER:  # bool is an int subclass: reject it too
                raise BadRequest(f"instances[{i}][{j}] is not a number: {_short(value)}")
    try:
        with np.errstate(over="ignore"):  # overflow becomes inf, reported just below
            array = np.asarray(rows, dtype=np.float32)
    except OverflowError:  # an integer literal too large for any float, e.g. 1e400 written out
        raise BadRequest(f"{_huge_integer(rows)} is out of float32 range") from None
    if not np.isfinite(array).all():
        i, j = (int(k) for k in np.argwhere(~np.isfinite(array))[0])
        raise BadRequest(
            f"instances[{i}][{j}] is {_describe(rows[i][j])}: NaN and infinity are not valid features"
        )
    return array


def _huge_integer(rows: list[list[Any]]) -> str:
    """Where the first integer beyond float32's range is (only looked for after an overflow)."""
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            if type(value) is int and abs(value) > _FLOAT32_MAX:
                return f"instances[{i}][{j}]"
    return "a value"


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _describe(value: float) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, float) and math.isinf(value):
        return "infinite"
    return "out of float32 range"
