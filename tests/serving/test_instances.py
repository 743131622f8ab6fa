"""Record-shaped requests against a mixed schema: every kind of bad record is a 400 that names
the row and the column; null is a missing value only where the model accepts one; an unseen
category follows the encoder."""

from __future__ import annotations

import math

import numpy as np
import pytest

from serving.body import predict_body_limit
from serving.instances import Batch, InstanceParser
from serving.onnx_model import onnx_feed
from serving.schema import Column, InputSchema, Kind, Layout, Unknown
from serving.validation import BadRequest, parse_json

SCHEMA = InputSchema(
    (
        Column("age", Kind.NUMBER, nullable=False),
        Column("income", Kind.NUMBER, nullable=True),
        Column("city", Kind.CATEGORY, True, ("lyon", "nice", "paris"), Unknown.IGNORE),
        Column("plan", Kind.CATEGORY, False, ("basic", "pro"), Unknown.ERROR),
    ),
    Layout.COLUMNS,
)
GOOD = {"age": 31, "income": 52.5, "city": "paris", "plan": "pro"}


def parse(body: bytes, schema: InputSchema = SCHEMA) -> Batch:
    return InstanceParser(schema, 8).parse(parse_json(body))


def test_records_become_typed_columns_in_schema_order() -> None:
    batch = parse(
        b'{"instances": [{"plan": "basic", "city": null, "income": null, "age": 40},'
        b' {"age": 31, "income": 52.5, "city": "tokyo", "plan": "pro"}]}'
    )
    assert batch.numbers.dtype == np.float32 and batch.numbers.shape == (2, 2)
    assert batch.numbers[0, 0] == 40 and math.isnan(batch.numbers[0, 1])
    assert batch.texts.tolist() == [[None, "basic"], ["tokyo", "pro"]]  # tokyo: ignored, counted
    feed = onnx_feed(SCHEMA, batch, "X")
    assert list(feed) == ["age", "income", "city", "plan"]
    assert feed["city"].tolist() == [[""], ["tokyo"]] and feed["age"].shape == (2, 1)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({k: v for k, v in GOOD.items() if k != "city"}, "instances[0] has no column 'city'"),
        (
            {**GOOD, "cty": "paris"},
            "instances[0] has an unknown column \"cty\" (did you mean 'city'?)",
        ),
        (
            {**GOOD, "age": "31"},
            "instances[0]['age'] is not a number: \"31\" is a string ('age' is numeric)",
        ),
        ({**GOOD, "age": True}, "instances[0]['age'] is not a number: true"),
        ({**GOOD, "age": [1]}, "instances[0]['age'] is not a number: [1]"),
        (
            {**GOOD, "age": None},
            "instances[0]['age'] is null, but the model does not accept a missing value in 'age'",
        ),
        (
            {**GOOD, "plan": None},
            "instances[0]['plan'] is null, but the model does not accept a missing value in 'plan'",
        ),
        (
            {**GOOD, "plan": "gold"},
            "instances[0]['plan'] is \"gold\", a category the model was not trained on (it knows: basic, pro)",
        ),
        (
            {**GOOD, "city": 75},
            "instances[0]['city'] is 75: 'city' is a category, send a string such as \"lyon\"",
        ),
        ({**GOOD, "income": 1e300}, "instances[0]['income'] is out of float32 range"),
    ],
)
def test_bad_records_name_the_column(record: dict[str, object], message: str) -> None:
    import json

    with pytest.raises(BadRequest) as info:
        parse(json.dumps({"instances": [record]}).encode())
    assert info.value.status == 400 and info.value.message.startswith(message), info.value.message


def test_nan_literals_and_lists_are_refused_for_a_mixed_model() -> None:
    with pytest.raises(
        BadRequest,
        match=r"instances\[0\]\['income'\] is NaN: NaN and infinity are not valid features; send null for a missing value",
    ):
        parse(b'{"instances": [{"age": 1, "income": NaN, "city": "nice", "plan": "pro"}]}')
    with pytest.raises(
        BadRequest,
        match=r"instances\[0\] must be an object of named columns \(age, income, city, plan\)",
    ):
        parse(b'{"instances": [[1, 2, 3, 4]]}')
    with pytest.raises(
        BadRequest,
        match=r'missing \'instances\': send \{"instances": \[\{"age": \.\.\., "income": \.\.\., "city": \.\.\., \.\.\.\}',
    ):
        parse(b'{"rows": []}')


def test_an_all_numeric_model_takes_records_and_lists_alike() -> None:
    schema = InputSchema((Column("a"), Column("b", nullable=True)), Layout.MATRIX)
    lists = parse(b'{"instances": [[1, null], [3, 4]]}', schema)
    records = parse(b'{"instances": [{"b": null, "a": 1}, {"a": 3, "b": 4}]}', schema)
    assert np.array_equal(lists.numbers, records.numbers, equal_nan=True)
    assert onnx_feed(schema, lists, "X")["X"].shape == (2, 2)
    with pytest.raises(
        BadRequest,
        match=r"instances\[0\]\[0\] is null, but the model does not accept a missing value in 'a'",
    ):
        parse(b'{"instances": [[null, 1]]}', schema)


def test_the_body_limit_leaves_room_for_named_columns_and_categories() -> None:
    import json

    limit = predict_body_limit(8, SCHEMA)
    longest = {
        "age": -1.2345678901234567e-30,
        "income": -1.2345678901234567e-30,
        "city": "x" * 60,
        "plan": "basic",
    }
    assert len(json.dumps({"instances": [longest] * 8}, indent=1)) < limit < 8_000


def test_a_forwarded_batch_is_taken_only_where_the_other_version_accepts_it() -> None:
    """A canary's or shadow's share is parsed by the live version: the other version reads it
    only with the same columns and nothing it refuses (then the live version answers)."""
    from dataclasses import replace

    from serving.instances import ForwardedMismatch

    batch = parse(b'{"instances": [{"age": 1, "income": null, "city": "tokyo", "plan": "pro"}]}')
    InstanceParser(SCHEMA, 8).check_forwarded(batch)  # the same schema: taken
    strict_income = replace(
        SCHEMA,
        columns=(
            SCHEMA.columns[0],
            replace(SCHEMA.columns[1], nullable=False),
            *SCHEMA.columns[2:],
        ),
    )
    with pytest.raises(ForwardedMismatch, match="'income' is missing"):
        InstanceParser(strict_income, 8).check_forwarded(batch)
    strict_city = replace(
        SCHEMA,
        columns=(
            *SCHEMA.columns[:2],
            replace(SCHEMA.columns[2], unknown=Unknown.ERROR),
            SCHEMA.columns[3],
        ),
    )
    with pytest.raises(ForwardedMismatch, match="'city' holds a category"):
        InstanceParser(strict_city, 8).check_forwarded(batch)
    with pytest.raises(ForwardedMismatch, match="different columns"):
        InstanceParser(replace(SCHEMA, columns=SCHEMA.columns[::-1]), 8).check_forwarded(batch)


def test_what_a_new_version_refuses_that_the_old_took_is_named() -> None:
    """A swap says so (a warning step) before any client is switched."""
    from dataclasses import replace

    from serving.schema import narrowed

    assert narrowed(SCHEMA, SCHEMA) == []
    age, income, city, _plan = SCHEMA.columns
    new = replace(
        SCHEMA,
        columns=(
            age,
            replace(income, nullable=False),
            replace(city, unknown=Unknown.ERROR),
            Column("tenure"),
        ),
    )
    assert narrowed(SCHEMA, new) == [
        "no column 'plan'",
        "a new column 'tenure' is required",
        "'income' may not be null",
        "'city' refuses categories it was not trained on",
    ]
    assert narrowed(new, SCHEMA) == ["no column 'tenure'", "a new column 'plan' is required"]


NUMERIC = InputSchema.numbers(["a", "b", "c"])


def test_plain_number_rows_take_the_fast_path_and_read_the_same() -> None:
    body = b'{"instances": [[1, 2.5, -3], [0, 1e-3, 4e30], [7, 8, 9]]}'
    batch = parse(body, NUMERIC)
    expected = np.asarray([[1, 2.5, -3], [0, 1e-3, 4e30], [7, 8, 9]], dtype=np.float32)
    assert batch.numbers.dtype == np.float32 and (batch.numbers == expected).all()
    assert batch.texts.shape == (3, 0) and batch.key == NUMERIC.key


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (b"[[1, 2, 3], [1, true, 3]]", "instances[1][1] is not a number: true"),
        (b'[[1, 2, 3], [1, 2, "3"]]', 'instances[1][2] is not a number: "3" is a string'),
        (b"[[1, 2, 3], [1, null, 3]]", "instances[1][1] is null"),
        (b"[[1, 2, 3], [1, 2]]", "instances[1] has 2 features, expected 3"),
        (b"[[1, 2, 3], [1, [2], 3]]", "instances[1][1] is not a number: [2]"),
        (b"[[1, 2, 3], [1, 2, 1e39]]", "instances[1][2]"),
    ],
)
def test_a_bad_value_among_plain_rows_is_named_where_it_is(rows: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse(b'{"instances": ' + rows + b"}", NUMERIC)
    assert message in caught.value.message
