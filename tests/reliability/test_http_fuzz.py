"""Hostile input at scale: hypothesis-generated bodies against the real deployed app.

Every answer is a 4xx with a message (or a 200 for a body that happens to be valid), never a
5xx, and after each batch a good request still succeeds: no input hurts a replica."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.serve_env import ServeEnv

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
APP = "fuzz"
N_FEATURES = 30
GOOD = {"instances": [[0.5] * N_FEATURES]}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=40), st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=200,
)
rows = st.lists(
    st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), scalars),
             min_size=0, max_size=40),
    min_size=0, max_size=20,
)  # fmt: skip
predict_bodies = st.one_of(
    values,
    st.builds(lambda r: {"instances": r}, rows),
    st.builds(lambda r, k: {k: r}, rows, st.text(max_size=12)),
    st.builds(
        lambda depth: {"instances": json.loads("[" * depth + "]" * depth)}, st.integers(1, 200)
    ),
    # More rows than the app's max_rows (1024): a 413, however many.
    st.builds(lambda n: {"instances": [[0.0] * N_FEATURES] * n}, st.integers(1025, 20_000)),
)
feedback_bodies = st.one_of(
    values,
    st.lists(
        st.fixed_dictionaries(
            {"request_id": st.one_of(st.text(max_size=200), scalars), "label": values}
        ),
        max_size=20,
    ),
)


def valid_rows(body: Any) -> bool:
    """A body our serving path must answer with 200."""
    if not isinstance(body, dict) or set(body) != {"instances"}:
        return False
    found = body["instances"]
    return (
        isinstance(found, list)
        and len(found) > 0
        and all(
            isinstance(r, list)
            and len(r) == N_FEATURES
            and all(
                isinstance(x, int | float)
                and not isinstance(x, bool)
                and math.isfinite(x)
                and abs(x) < 3.4e38
                for x in r
            )
            for r in found
        )
    )


@pytest.fixture(scope="module")
def fuzzed(serve_env: ServeEnv) -> Iterator[ServeEnv]:
    asyncio.run(serve_env.deploy(serve_env.app_spec(APP, "1", ["1"])))
    yield serve_env
    del serve_env.specs[APP]


def check(response: httpx.Response, body: Any, valid: bool) -> None:
    assert response.status_code < 500, (body, response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert response.json()["error"], response.text
    elif not valid:
        pytest.fail(f"200 for a body that is not valid: {body!r:.300}")


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(predict_bodies, min_size=5, max_size=5))
def test_predict_never_answers_5xx(fuzzed: ServeEnv, batch: list[Any]) -> None:
    with httpx.Client(base_url=fuzzed.head.serve_url, timeout=30) as client:
        for body in batch:
            text = json.dumps(body, allow_nan=True)
            check(client.post(f"/{APP}/predict", content=text), body, valid_rows(body))
        assert client.post(f"/{APP}/predict", json=GOOD).status_code == 200


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(feedback_bodies, min_size=5, max_size=5))
def test_feedback_never_answers_5xx(fuzzed: ServeEnv, batch: list[Any]) -> None:
    with httpx.Client(base_url=fuzzed.head.serve_url, timeout=30, headers=fuzzed.auth) as client:
        for body in batch:
            response = client.post(f"/{APP}/feedback", content=json.dumps(body, allow_nan=True))
            # Labels for ids never seen are taken and wait for their prediction: a 200.
            check(response, body, valid=True)
        assert client.post(f"/{APP}/predict", json=GOOD).status_code == 200
