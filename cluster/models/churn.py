"""`models example --name churn`: a customer-churn table generated in code (no download), with
numbers, categories and missing values, as the models operators deploy are fitted on; and
two versions of a churn classifier fitted on it: a good v1 and a bad v2 (shuffled labels).
They go through the real import path, record-shaped requests and all."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from cluster.models.importer import ImportResult, import_model
from cluster.models.store import ModelStore
from cluster.models.tabular import Sample

CHURN_NAME = "churn"
NUMBERS = ("tenure_months", "monthly_charges", "support_calls")
CATEGORIES = {
    "contract": ("month-to-month", "one-year", "two-year"),
    "payment": ("card", "bank-transfer", "check", "e-wallet"),
    "region": ("north", "south", "east", "west"),
}
COLUMNS = (*NUMBERS, *CATEGORIES)
MISSING = 0.05  # share of monthly_charges left empty, as a billing system leaves them


def churn_table(rows: int = 3000, seed: int = 3, missing: bool = True) -> tuple[Any, np.ndarray]:
    """A DataFrame of customers and whether each churned (1) or not (0)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    contract = rng.choice(CATEGORIES["contract"], rows, p=[0.55, 0.25, 0.2])
    payment = rng.choice(CATEGORIES["payment"], rows, p=[0.35, 0.3, 0.15, 0.2])
    tenure = rng.integers(0, 73, rows).astype(np.float64)
    charges = np.round(rng.uniform(20, 120, rows), 2)
    calls = rng.poisson(1.5, rows).astype(np.float64)
    score = (
        1.6 * (contract == "month-to-month")
        - 1.2 * (contract == "two-year")
        + 0.8 * (payment == "check")
        - 0.045 * tenure
        + 0.02 * (charges - 70)
        + 0.45 * calls
        - 0.4
    )
    churned = (rng.random(rows) < 1 / (1 + np.exp(-score))).astype(np.int64)
    if missing:
        charges[rng.random(rows) < MISSING] = np.nan
    frame = pd.DataFrame(
        {
            "tenure_months": tenure,
            "monthly_charges": charges,
            "support_calls": calls,
            "contract": contract.astype(object),
            "payment": payment.astype(object),
            "region": rng.choice(CATEGORIES["region"], rows).astype(object),
        }
    )
    return frame, churned


def split(
    frame: Any, y: np.ndarray, holdout: float = 0.3
) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """Train and holdout parts (the last `holdout` share of rows: the table is shuffled)."""
    cut = int(len(y) * (1 - holdout))
    return frame.iloc[:cut], frame.iloc[cut:].reset_index(drop=True), y[:cut], y[cut:]


def churn_pipeline() -> Any:
    """Impute and scale the numbers, one-hot encode the categories (an unseen one is ignored),
    then a logistic regression: the pipeline most churn models start as."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prepare = ColumnTransformer(
        [
            (
                "numbers",
                make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                list(NUMBERS),
            ),
            ("categories", OneHotEncoder(handle_unknown="ignore"), list(CATEGORIES)),
        ]
    )
    return Pipeline([("prepare", prepare), ("model", LogisticRegression(max_iter=1000))])


def churn_models() -> list[Any]:
    """v1 (good) and v2 (bad on purpose: fitted on shuffled labels)."""
    frame, y = churn_table()
    train, _, y_train, _ = split(frame, y)
    shuffled = np.random.default_rng(0).permutation(y_train)
    return [churn_pipeline().fit(train, y_train), churn_pipeline().fit(train, shuffled)]


def churn_sample() -> Sample:
    """The holdout rows, as a sample read from CSV would hold them."""
    frame, y = churn_table()
    _, test, _, y_test = split(frame, y)
    return sample_of(test, y_test, "churn holdout (30%)")


def sample_of(frame: Any, y: np.ndarray | None, source: str) -> Sample:
    columns = {}
    for name in frame.columns:
        values = frame[name].to_numpy()
        if values.dtype.kind in "fiu":
            columns[str(name)] = values.astype(np.float64)
        else:
            columns[str(name)] = np.asarray(
                [None if not isinstance(v, str) else v for v in values], dtype=object
            )
    return Sample(columns, y, source)


def make_churn_examples(store: ModelStore, name: str = CHURN_NAME) -> list[ImportResult]:
    import skops.io as sio

    sample = churn_sample()
    results = []
    with tempfile.TemporaryDirectory(prefix="mlops-example-") as tmp:
        for i, model in enumerate(churn_models(), start=1):
            path = Path(tmp) / f"churn-v{i}.skops"
            sio.dump(model, path)
            results.append(import_model(store, path, name, sample))
    return results
