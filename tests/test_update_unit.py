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


def test_the_churn_example_drifts_and_both_methods_win_it_back(tmp_path: Path) -> None:
    """The demo's story in numbers: after the price rise churn v1 is worse than its holdout
    said; incremental (its SGD learns on) and batch (a refit on v1's own kept rows and the new
    records) are each better on newer customers and within the default margin on the
    holdout. The store kept v1's training rows for exactly that."""
    from cluster.models.churn import churn_sample, drifted_sample, make_churn_examples
    from cluster.updates.train import concat, stored_rows

    store = ModelStore(tmp_path)
    make_churn_examples(store)
    v1 = store.get("churn", "1")
    schema = v1.meta.schema
    estimator = load(store.source("churn", "1"))
    base = stored_rows(store.training("churn", "1"), v1, "training data")
    assert base is not None and len(base) == 2100 and base.names == schema.names
    holdout, world = churn_sample(), drifted_sample(1500, seed=11)
    train = Sample({k: v[:1200] for k, v in world.columns.items()}, world.y[:1200], "older")  # type: ignore[index]
    newest = Sample({k: v[1200:] for k, v in world.columns.items()}, world.y[1200:], "newest")  # type: ignore[index]

    def accuracy(model: object, sample: Sample) -> float:
        return score(model, sample, schema, "classifier")["accuracy"]

    assert accuracy(estimator, newest) < v1.meta.raw["metrics"]["accuracy"] - 0.05
    for candidate in (
        incremental(estimator, train, schema, 0, base),
        batch(estimator, train, schema, base),
    ):
        verdict = judge(
            "accuracy",
            {"accuracy": accuracy(estimator, newest)},
            {"accuracy": accuracy(candidate, newest)},
            {"accuracy": accuracy(estimator, holdout)},
            {"accuracy": accuracy(candidate, holdout)},
            0.01,
        )
        assert verdict.accepted and verdict.candidate_new > verdict.live_new + 0.05, verdict
    assert len(concat(base, train)) == 3300


def load(path: Path | None) -> object:
    from cluster.models.convert import load_estimator

    assert path is not None
    return load_estimator(path)


def test_the_verdict_prints_side_by_side_for_a_person() -> None:
    """`models update` without --json: the two versions' figures in one table, then why."""
    from rich.console import Console

    from cluster.updates.train import Verdict
    from cluster.updates.update import UpdateFinished, UpdateJudged
    from console.render.update import print_update_event

    out = Console(width=100, record=True, color_system=None)
    verdict = Verdict("accuracy", 0.6857, 0.8143, 0.746, 0.742, True, "better on the newest")
    print_update_event(out, UpdateJudged("churn", "incremental", "1", 560, 140, verdict))
    print_update_event(out, UpdateFinished("churn", "stored", "1", "3", "better on the newest"))
    text = out.export_text()
    assert "churn: incremental update of v1" in text and "newest 140 records" in text, text
    assert "live v1 accuracy" in text and "0.6857" in text and "0.7460" in text, text
    assert "candidate accuracy" in text and "0.8143" in text and "0.7420" in text, text
    assert "stored: better on the newest" in text, text
