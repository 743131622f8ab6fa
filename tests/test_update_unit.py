"""`models update`'s pieces on their own: records checked and split by time, incremental and
batch candidates, and the verdict that decides whether anything is stored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cluster.models.examples import example_data
from cluster.models.store import ModelStore
from cluster.models.tabular import Sample
from cluster.updates.dataset import UpdateInputError, split_by_time
from cluster.updates.gather import LabelledInput
from cluster.updates.train import batch, incremental, judge, score
from console.cli import main
from serving.schema import InputSchema

_, X_TEST, _, Y_TEST, NAMES = example_data()
SCHEMA = InputSchema.numbers(NAMES)


@pytest.fixture(scope="module")
def meta(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from cluster.models.examples import make_examples

    store = ModelStore(tmp_path_factory.mktemp("store"))
    make_examples(store)
    return store.get("breast-cancer", "1").meta


def records(X: np.ndarray, y: np.ndarray) -> list[LabelledInput]:
    return [
        LabelledInput(f"r{i}", 1000.0 + i, list(map(float, x)), int(t))
        for i, (x, t) in enumerate(zip(X, y, strict=True))
    ]


def test_records_are_checked_and_split_by_time(meta) -> None:  # type: ignore[no-untyped-def]
    rows = records(X_TEST, Y_TEST)
    split = split_by_time(rows, meta, 0.2, min_records=100)
    assert len(split.held_out) == int(len(rows) * 0.2) and len(split.train) + len(
        split.held_out
    ) == len(rows)
    assert split.window == (1000.0, 1000.0 + len(rows) - 1)
    assert split.held_out.columns[NAMES[0]][0] == X_TEST[len(split.train), 0]  # the newest held out
    with pytest.raises(
        UpdateInputError,
        match="171 labelled records with their inputs, fewer than --min-records 500",
    ):
        split_by_time(rows, meta, 0.2, min_records=500)
    short = [*rows[:10], LabelledInput("bad-1", 2000.0, [1.0, 2.0], 0)]
    with pytest.raises(UpdateInputError, match="record bad-1: 2 features, the model takes 30"):
        split_by_time(short, meta, 0.2, min_records=1)
    odd = [*rows[:10], LabelledInput("bad-2", 2000.0, rows[0].features, 7)]
    with pytest.raises(
        UpdateInputError, match=r"record bad-2: label 7 is not one of the model's classes \(0, 1\)"
    ):
        split_by_time(odd, meta, 0.2, min_records=1)


def test_incremental_learns_from_shifted_data_and_batch_refits() -> None:
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X_train, X_test, y_train, y_test, _ = example_data()
    sgd = make_pipeline(StandardScaler(), SGDClassifier(loss="log_loss", random_state=0)).fit(
        X_train, y_train
    )
    # Production drifted: the same cases, their features scaled and shifted.
    drift = lambda X: X * 1.4 + X.std(axis=0)  # noqa: E731
    train = Sample.from_array(drift(X_train), y_train, NAMES, "drifted")
    judge_on = Sample.from_array(drift(X_test), y_test, NAMES, "drifted, newest")
    updated = incremental(sgd, train, SCHEMA)
    before = score(sgd, judge_on, SCHEMA, "classifier")["accuracy"]
    after = score(updated, judge_on, SCHEMA, "classifier")["accuracy"]
    assert after > before + 0.1, (before, after)
    assert score(sgd, judge_on, SCHEMA, "classifier")["accuracy"] == before  # the parent untouched
    logistic = make_pipeline(StandardScaler(), LogisticRegression()).fit(X_train, y_train)
    with pytest.raises(
        UpdateInputError,
        match=r"a LogisticRegression cannot learn incrementally .*use --method batch",
    ):
        incremental(logistic, train, SCHEMA)
    refit = batch(logistic, train, SCHEMA)
    assert score(refit, judge_on, SCHEMA, "classifier")["accuracy"] > 0.9


def test_the_verdict_needs_better_new_figures_and_a_holdout_within_the_margin() -> None:
    ok = judge(
        "accuracy",
        {"accuracy": 0.80},
        {"accuracy": 0.90},
        {"accuracy": 0.95},
        {"accuracy": 0.945},
        0.01,
    )
    assert ok.accepted and "better on the newest records (accuracy 0.9000 vs 0.8000)" in ok.reason
    same = judge("accuracy", {"accuracy": 0.80}, {"accuracy": 0.80}, None, None, 0.01)
    assert not same.accepted and same.reason.startswith("not better on the newest records")
    worse = judge(
        "accuracy",
        {"accuracy": 0.80},
        {"accuracy": 0.90},
        {"accuracy": 0.95},
        {"accuracy": 0.93},
        0.01,
    )
    assert not worse.accepted and "worse on the holdout than --margin 0.01 allows" in worse.reason
    mse = judge("mse", {"mse": 10.0}, {"mse": 8.0}, {"mse": 5.0}, {"mse": 5.04}, 0.01)
    assert mse.accepted  # 5.04 is within 1% of 5.0


def test_models_update_refuses_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "hosts:\n  me: {connection: local}\ntargets:\n  local: {topology: single, host: me}\n"
        "apps:\n  churn: {target: local, model: churn:1}\n"
    )
    assert main(["models", "update", "nope", "-i", str(inventory)]) == 2
    assert "no app named 'nope'" in capsys.readouterr().err
    assert main(["models", "update", "churn", "-i", str(inventory), "--margin", "2"]) == 2
    assert "--margin 2: give a share between 0 and 1" in capsys.readouterr().err
