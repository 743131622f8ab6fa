"""Hostile records against the churn example's schema, in process: the parser either refuses a
body with a BadRequest (a 4xx) or hands onnxruntime a batch it answers; nothing else can
happen (anything else would be a 500). Bodies are mutations of a good record, so most get
past the JSON shape and exercise the column checks."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster.models.churn import make_churn_examples
from cluster.models.store import ModelStore
from serving.instances import InstanceParser
from serving.onnx_model import OnnxModel
from serving.validation import BadRequest

GOOD = {
    "tenure_months": 12, "monthly_charges": 70.5, "support_calls": 1,
    "contract": "one-year", "payment": "card", "region": "north",
}  # fmt: skip
odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["one-year", "two-year", "month-to-month", "", "NaN", "null"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
keys = st.one_of(st.sampled_from(sorted(GOOD)), st.text(max_size=15))


@st.composite
def record(draw: st.DrawFn) -> Any:
    row: dict[str, Any] = dict(GOOD)
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["set", "drop", "add"]))
        key = draw(keys)
        if action == "drop":
            row.pop(key, None)
        else:
            row[key] = draw(odd_values)
    return row if draw(st.integers(0, 9)) else draw(odd_values)


bodies = st.one_of(
    st.builds(lambda rows: {"instances": rows}, st.lists(record(), min_size=0, max_size=6)),
    odd_values,
)


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> OnnxModel:
    store = ModelStore(tmp_path_factory.mktemp("churn"))
    make_churn_examples(store)
    return OnnxModel(Path(store.root / "churn" / "1"))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies)
def test_a_record_is_refused_with_a_reason_or_answered(churn: OnnxModel, body: Any) -> None:
    parser = InstanceParser(churn.meta.schema, 64)
    try:
        batch = parser.parse(body)
    except BadRequest as exc:
        assert exc.status in (400, 413) and exc.message
        return
    prediction = churn.predict(batch)
    assert len(prediction.labels) == len(batch) == len(body["instances"])
    assert prediction.probabilities is not None
    assert all(math.isfinite(p) for row in prediction.probabilities.tolist() for p in row)
