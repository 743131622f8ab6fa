"""Gate expressions parse into thresholds, absolute or relative to the live version."""

from __future__ import annotations

import pytest

from cluster.gates import Gate, GateSyntaxError, parse_gate


@pytest.mark.parametrize(
    ("text", "gate"),
    [
        ("accuracy>=0.90", Gate("accuracy", ">=", 0.90)),
        ("p95_ms <= 50", Gate("p95_ms", "<=", 50.0)),
        ("error_rate<0.01", Gate("error_rate", "<", 0.01)),
        ("accuracy>=blue-0.02", Gate("accuracy", ">=", -0.02, relative=True)),
        ("p99_ms<=old+5", Gate("p99_ms", "<=", 5.0, relative=True)),
        ("f1>baseline", Gate("f1", ">", 0.0, relative=True)),
    ],
)
def test_parse(text: str, gate: Gate) -> None:
    assert parse_gate(text) == gate


def test_relative_threshold_needs_the_baseline() -> None:
    gate = parse_gate("accuracy>=blue-0.02")
    assert gate.threshold(None) is None
    assert gate.threshold({"accuracy": 0.95}) == pytest.approx(0.93)
    assert gate.passes(0.94, 0.93) and not gate.passes(0.92, 0.93)
    assert gate.text == "accuracy>=blue-0.02"


@pytest.mark.parametrize(
    "text", ["", "accuracy", "accuracy=>0.9", "speed>=1", "p95_ms<=green+1", "acc>=0.9"]
)
def test_bad_gates_say_how_to_write_one(text: str) -> None:
    with pytest.raises(GateSyntaxError):
        parse_gate(text)
