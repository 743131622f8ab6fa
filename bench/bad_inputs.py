"""21 bad prediction requests, each in every server's own request format.

Ours refuses all of them with a 4xx naming the problem. A server mishandles one when it
answers 5xx (it crashed on the client's mistake), 200 with predictions (it answered a
question that was never valid), or nothing at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

FEATURES = 30
_ZERO = "0"


@dataclass(frozen=True)
class Bad:
    """One bad request: raw body bytes, or the rows' JSON text put in each server's envelope."""

    name: str
    body: bytes | None = None  # the whole body, the same for every server
    rows: str | None = None  # JSON text of the rows, wrapped per server
    shape: tuple[int, int] = (1, FEATURES)  # what a V2 client would declare for `rows`


def _row(*cells: str, n: int = FEATURES) -> str:
    values = [*cells, *([_ZERO] * (n - len(cells)))]
    return "[" + ", ".join(values) + "]"


BAD: tuple[Bad, ...] = (
    Bad("empty body", body=b""),
    Bad("malformed JSON", body=b"{"),
    Bad("not UTF-8", body=b"\xff\xfe"),
    Bad("nested 200,000 deep", body=b"[" * 200_000),
    Bad("rows nested 100,000 deep", rows="[" * 100_000 + "]" * 100_000),
    Bad("no rows at all", rows="[]", shape=(0, FEATURES)),
    Bad("2 features, 30 expected", rows="[" + _row(n=2) + "]", shape=(1, 2)),
    Bad("31 features, 30 expected", rows="[" + _row(n=31) + "]", shape=(1, 31)),
    Bad("ragged rows (30 then 29)", rows=f"[{_row()}, {_row(n=29)}]", shape=(2, FEATURES)),
    Bad("a row that is a number", rows="[5]"),
    Bad("a string in a row", rows="[" + _row('"x"') + "]"),
    Bad("a number as a string", rows="[" + _row('"2"') + "]"),
    Bad("a boolean in a row", rows="[" + _row("true") + "]"),
    Bad("null in a row", rows="[" + _row("null") + "]"),
    Bad("NaN", rows="[" + _row("NaN") + "]"),
    Bad("Infinity", rows="[" + _row("Infinity") + "]"),
    Bad("-Infinity", rows="[" + _row("-Infinity") + "]"),
    Bad("1e300 (beyond float32)", rows="[" + _row("1e300") + "]"),
    Bad("1 and 400 zeros", rows="[" + _row("1" + "0" * 400) + "]"),
    Bad("-1e39 (beyond float32)", rows="[" + _row("-1" + "0" * 39) + "]"),
    Bad(
        "200,000 rows in one request",
        rows="[" + ", ".join([_row()] * 200_000) + "]",
        shape=(200_000, FEATURES),
    ),
)


def instances(rows: str, _: tuple[int, int]) -> bytes:
    """Ours, Flask and the FastAPI peer: {"instances": ROWS}."""
    return ('{"instances": ' + rows + "}").encode()


def bentoml(rows: str, _: tuple[int, int]) -> bytes:
    """BentoML: the body's keys are the API's parameter names."""
    return ('{"data": ' + rows + "}").encode()


def v2(rows: str, shape: tuple[int, int]) -> bytes:
    """MLServer (the V2 inference protocol): a tensor with its declared shape."""
    head = {"name": "input-0", "shape": list(shape), "datatype": "FP32"}
    text = json.dumps(head)[:-1] + ', "data": ' + rows + "}"
    outputs = '[{"name": "predict"}, {"name": "predict_proba"}]'
    return ('{"inputs": [' + text + '], "outputs": ' + outputs + "}").encode()


Envelope = Callable[[str, tuple[int, int]], bytes]


def body_of(bad: Bad, envelope: Envelope) -> bytes:
    if bad.body is not None:
        return bad.body
    assert bad.rows is not None
    return envelope(bad.rows, bad.shape)
