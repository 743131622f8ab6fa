"""Request validation: every kind of bad input is a 400 (or 413) naming the problem."""

from __future__ import annotations

import numpy as np
import pytest

from serving.instances import InstanceParser
from serving.schema import InputSchema
from serving.validation import BadRequest, parse_json


def parse(body: bytes, n: int = 3, max_rows: int = 4) -> np.ndarray:
    schema = InputSchema.numbers([f"f{j}" for j in range(n)])
    return InstanceParser(schema, max_rows).parse(parse_json(body)).numbers


def test_good_rows_become_float32() -> None:
    arr = parse(b'{"instances": [[1, 2.5, -3], [0, 0, 1e3]]}')
    assert arr.dtype == np.float32 and arr.shape == (2, 3)
    assert arr[1, 2] == 1000.0


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"", 400, "empty request body"),
        (b"{not json", 400, "malformed JSON"),
        (b"\xff\xfe", 400, "malformed JSON"),
        (b"[]", 400, "expected a JSON object with an 'instances' list"),
        (b'{"rows": [[1,2,3]]}', 400, "missing 'instances'"),
        (b'{"instances": {"a": 1}}', 400, "'instances' must be a list of rows"),
        (b'{"instances": []}', 400, "'instances' is empty"),
        (b'{"instances": [[1,2]]}', 400, "instances[0] has 2 features, expected 3"),
        (
            b'{"instances": [[1,2,3], 5]}',
            400,
            "instances[1] must be a list of 3 numbers or an object of named columns",
        ),
        (b'{"instances": [[1,"2",3]]}', 400, 'instances[0][1] is not a number: "2"'),
        (b'{"instances": [[1,2,true]]}', 400, "instances[0][2] is not a number: true"),
        (
            b'{"instances": [[1,null,3]]}',
            400,
            "instances[0][1] is null, but the model does not accept a missing value in 'f1'",
        ),
        (b'{"instances": [[1,2,3],[NaN,2,3]]}', 400, "instances[1][0] is NaN"),
        (b'{"instances": [[1,Infinity,3]]}', 400, "instances[0][1] is infinite"),
        (b'{"instances": [[1,2,1e300]]}', 400, "instances[0][2] is out of float32 range"),
        (
            b'{"instances": [[1,2,3],[4,5,1' + b"0" * 400 + b"]]}",
            400,
            "instances[1][2] is out of float32 range",
        ),
        (
            b'{"instances": [[1,2,-1' + b"0" * 39 + b"]]}",
            400,
            "instances[0][2] is out of float32 range",
        ),
        (b"[" * 200_000, 400, "malformed JSON: nested too deeply"),
        (
            b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            400,
            "malformed JSON: nested too deeply",
        ),
        (
            b'{"instances": [[1,2,3],[1,2,3],[1,2,3],[1,2,3],[1,2,3]]}',
            413,
            "too many rows: 5 > limit 4",
        ),
    ],
)
def test_bad_input(body: bytes, status: int, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse(body)
    assert info.value.status == status
    assert message in info.value.message
