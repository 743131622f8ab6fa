"""Gate expressions parse into thresholds, absolute or relative to the live version."""

from __future__ import annotations

import pytest

from cluster.gates import Gate, GateSyntaxError, parse_gate


@pytest.mark.parametrize(
    ("text", "gate"),
    [
        ("accuracy>=0.90", Gate("accuracy", ">=", 0.90, min_labels=200)),
        ("p95_ms <= 50", Gate("p95_ms", "<=", 50.0)),
        ("error_rate<0.01", Gate("error_rate", "<", 0.01)),
        ("accuracy>=blue-0.02", Gate("accuracy", ">=", -0.02, relative=True, min_labels=200)),
        ("accuracy>=blue-0.02@500", Gate("accuracy", ">=", -0.02, relative=True, min_labels=500)),
        ("p99_ms<=old+5", Gate("p99_ms", "<=", 5.0, relative=True)),
        ("f1>baseline", Gate("f1", ">", 0.0, relative=True, min_labels=200)),
        ("mse<=blue*1.1", Gate("mse", "<=", 0.0, relative=True, factor=1.1, min_labels=200)),
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


def test_a_gate_reads_back_as_written() -> None:
    for text in ("accuracy>=blue-0.02", "accuracy>=blue-0.02@500", "mse<=blue*1.1", "p95_ms<=50"):
        assert parse_gate(text).text == text
    assert parse_gate("mse<=blue*1.1").threshold({"mse": 10.0}) == pytest.approx(11.0)


def test_a_quality_gate_on_live_labels_needs_enough_of_them() -> None:
    from cluster.rollout.gates_eval import evaluate

    gate = parse_gate("accuracy>=blue-0.02@50")
    # One poisoned label (or a few lucky ones) cannot pass it...
    [waiting] = evaluate([gate], {"accuracy": 1.0}, {"accuracy": 0.9}, labels=1, final=False)
    assert waiting.pending and waiting.reason == "waiting: 1 of the 50 labels it needs"
    [short] = evaluate([gate], {"accuracy": 1.0}, {"accuracy": 0.9}, labels=49)
    assert not short.passed
    assert short.reason == "only 49 labels arrived for the new version; the gate needs 50"
    # ...fifty can; the holdout (labels=None) is judged on what it holds.
    assert evaluate([gate], {"accuracy": 0.95}, {"accuracy": 0.9}, labels=50)[0].passed
    assert evaluate([gate], {"accuracy": 0.95}, {"accuracy": 0.9})[0].passed
    # Latency gates count no labels.
    assert evaluate([parse_gate("p95_ms<=50")], {"p95_ms": 10.0}, None, labels=0)[0].passed


def test_the_default_gate_suits_the_task() -> None:
    from cluster.gates import default_gate

    assert default_gate("classifier").text == "accuracy>=blue-0.02"
    assert default_gate("regressor").text == "mse<=blue*1.1"
    assert default_gate("regressor").holdout_only


@pytest.mark.parametrize(
    "text",
    ["", "accuracy", "accuracy=>0.9", "speed>=1", "p95_ms<=green+1", "acc>=0.9", "p95_ms<=5@10"],
)
def test_bad_gates_say_how_to_write_one(text: str) -> None:
    with pytest.raises(GateSyntaxError):
        parse_gate(text)
