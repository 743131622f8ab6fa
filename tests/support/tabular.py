"""The three models the tabular issue names, fitted as a user fits them on DataFrames, and the
sample CSVs a user would write for them (pandas' to_csv: an empty cell is a missing value)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cluster.models.churn import CATEGORIES, NUMBERS, churn_table, split

CITIES = ("paris", "lyon", "nice")


def people(rows: int = 1200, seed: int = 5, missing: float = 0.0) -> tuple[Any, np.ndarray]:
    """age, income and city, and a label that depends on all three."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows).astype(np.float64)
    income = np.round(rng.normal(52, 15, rows), 1)
    city = rng.choice(CITIES, rows)
    score = (
        0.06 * (age - 45) + 0.05 * (income - 52) + 1.2 * (city == "paris") - 0.8 * (city == "nice")
    )
    y = (rng.random(rows) < 1 / (1 + np.exp(-score))).astype(np.int64)
    if missing:
        age[rng.random(rows) < missing] = np.nan
        income[rng.random(rows) < missing] = np.nan
    frame = pd.DataFrame({"age": age, "income": income, "city": city.astype(object)})
    return frame, y


def column_transformer_model(C: float = 1.0) -> tuple[Any, Any, np.ndarray]:
    """Pipeline(ColumnTransformer([StandardScaler on age, income; OneHotEncoder(ignore) on
    city]), LogisticRegression), fitted on a DataFrame without missing values."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame, y = people()
    train, test, y_train, y_test = split(frame, y)
    prepare = ColumnTransformer(
        [
            ("numbers", StandardScaler(), ["age", "income"]),
            ("city", OneHotEncoder(handle_unknown="ignore"), ["city"]),
        ]
    )
    model = Pipeline([("prepare", prepare), ("model", LogisticRegression(C=C))])
    return model.fit(train, y_train), test, y_test


def hist_gradient_boosting_model(max_iter: int = 60) -> tuple[Any, Any, np.ndarray]:
    """HistGradientBoostingClassifier on numbers with 5% missing (handled natively)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    frame, y = people(missing=0.05)
    numbers = frame[["age", "income"]]
    train, test, y_train, y_test = split(numbers, y)
    model = HistGradientBoostingClassifier(max_iter=max_iter, random_state=0)
    return model.fit(train, y_train), test, y_test


def imputer_model(C: float = 1.0) -> tuple[Any, Any, np.ndarray]:
    """Pipeline(SimpleImputer, StandardScaler, LogisticRegression) on numbers with 5% missing."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame, y = people(missing=0.05)
    numbers = frame[["age", "income"]]
    train, test, y_train, y_test = split(numbers, y)
    model = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(C=C))
    return model.fit(train, y_train), test, y_test


def regressor_model() -> tuple[Any, Any, np.ndarray]:
    """GradientBoostingRegressor fitted on a DataFrame (monthly charges from the churn table)."""
    from sklearn.ensemble import GradientBoostingRegressor

    frame, _ = churn_table(missing=False)
    X = frame[["tenure_months", "support_calls"]]
    y = frame["monthly_charges"].to_numpy()
    train, test, y_train, y_test = split(X, y)
    return (
        GradientBoostingRegressor(n_estimators=30, random_state=0).fit(train, y_train),
        test,
        y_test,
    )


def save(model: Any, path: Path) -> Path:
    import skops.io as sio

    sio.dump(model, path)
    return path


def write_sample(frame: Any, y: np.ndarray, path: Path) -> Path:
    """A labelled CSV as pandas writes it: missing values are empty cells."""
    out = frame.copy()
    out["label"] = y
    out.to_csv(path, index=False)
    return path


__all__ = ["CATEGORIES", "NUMBERS"]
