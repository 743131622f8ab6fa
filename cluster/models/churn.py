"""`models example --name churn`: a customer-churn table generated in code (no download), with
numbers, categories and missing values, as the models operators deploy are fitted on; and
two versions of a churn classifier fitted on it: a good v1 and a bad v2 (shuffled labels).
They go through the real import path, record-shaped requests and all.

v1 is an SGD classifier (logistic loss) behind the usual imputing, scaling and one-hot
pipeline, so that it can learn incrementally (`models update --method incremental`), and the
store keeps the table it was fitted on (for `--method batch`).

The drifted world (`drift=True`): price rises reached half of the customers (`price_rises`,
how many times their price went up this year: 0 for everyone before, 1 to 3 after), and
each rise makes a customer likelier to leave.
v1 never saw a price rise, so its accuracy on live labels falls well below its holdout
figure; a model updated on the drifted records gets it back. The demo's `--drift` sends it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from cluster.models.importer import ImportResult, import_model
from cluster.models.store import ModelStore
from cluster.models.tabular import Sample

CHURN_NAME = "churn"
NUMBERS = ("tenure_months", "monthly_charges", "support_calls", "price_rises")
CATEGORIES = {
    "contract": ("month-to-month", "one-year", "two-year"),
    "payment": ("card", "bank-transfer", "check", "e-wallet"),
    "region": ("north", "south", "east", "west"),
}
COLUMNS = (*NUMBERS, *CATEGORIES)
MISSING = 0.05  # share of monthly_charges left empty, as a billing system leaves them
RAISED = 0.5  # in the drifted world, the share of customers whose price went up
RAISE_EFFECT = 1.2  # log-odds of churning per price rise


def churn_table(
    rows: int = 3000, seed: int = 3, missing: bool = True, drift: bool = False
) -> tuple[Any, np.ndarray]:
    """A DataFrame of customers and whether each churned (1) or not (0); with `drift`, after
    the price rise (see the module's docstring)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    later = np.random.default_rng(seed + 100)  # the same customers, whatever `drift` says
    contract = rng.choice(CATEGORIES["contract"], rows, p=[0.55, 0.25, 0.2])
    payment = rng.choice(CATEGORIES["payment"], rows, p=[0.35, 0.3, 0.15, 0.2])
    tenure = rng.integers(0, 73, rows).astype(np.float64)
    charges = np.round(rng.uniform(20, 120, rows), 2)
    calls = rng.poisson(1.5, rows).astype(np.float64)
    raised = later.random(rows) < (RAISED if drift else 0.0)
    rises = np.where(raised, later.integers(1, 4, rows), 0).astype(np.float64)
    score = (
        1.6 * (contract == "month-to-month")
        - 1.2 * (contract == "two-year")
        + 0.8 * (payment == "check")
        - 0.045 * tenure
        + 0.02 * (charges - 70)
        + 0.45 * calls
        - 0.4
        + RAISE_EFFECT * rises
    )
    churned = (rng.random(rows) < 1 / (1 + np.exp(-score))).astype(np.int64)
    if missing:
        charges[rng.random(rows) < MISSING] = np.nan
    frame = pd.DataFrame(
        {
            "tenure_months": tenure,
            "monthly_charges": charges,
            "support_calls": calls,
            "price_rises": rises,
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
    then a linear classifier with logistic loss trained by SGD: the pipeline most churn
    models start as, in the form that can go on learning (`partial_fit`)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import SGDClassifier
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
    model = SGDClassifier(loss="log_loss", alpha=1e-3, random_state=0)
    return Pipeline([("prepare", prepare), ("model", model)])


def churn_models() -> list[tuple[Any, Sample]]:
    """v1 (good) and v2 (bad on purpose: fitted on shuffled labels), each with the rows it
    was fitted on."""
    frame, y = churn_table()
    train, _, y_train, _ = split(frame, y)
    shuffled = np.random.default_rng(0).permutation(y_train)
    return [
        (churn_pipeline().fit(train, labels), sample_of(train, labels, f"churn training ({why})"))
        for labels, why in ((y_train, "70%"), (shuffled, "70%, labels shuffled"))
    ]


def drifted_sample(rows: int = 2000, seed: int = 11) -> Sample:
    """Customers after the price rise, labelled: what the demo's `--drift` sends."""
    frame, y = churn_table(rows, seed, drift=True)
    return sample_of(frame, y, f"churn after the price rise ({rows} customers)")


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
        for i, (model, training) in enumerate(churn_models(), start=1):
            path = Path(tmp) / f"churn-v{i}.skops"
            sio.dump(model, path)
            results.append(import_model(store, path, name, sample, training=training))
    return results
