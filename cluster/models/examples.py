"""`models example`: three versions of a breast-cancer classifier from scikit-learn's bundled
data (no downloads) — a good v1, a better v2, and a deliberately bad v3 trained on shuffled
labels, for rollback demos and tests. They go through the real import path."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from cluster.models.importer import ImportResult, Sample, import_model
from cluster.models.store import ModelStore

EXAMPLE_NAME = "breast-cancer"


def example_data(seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer()
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.3, random_state=seed, stratify=data.target
    )
    return X_train, X_test, y_train, y_test, [str(n) for n in data.feature_names]


def example_models() -> list[Any]:
    """The three fitted estimators behind versions 1, 2 and 3 (deterministic: same every time)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X_train, _, y_train, _, _ = example_data()
    shuffled = np.random.default_rng(0).permutation(y_train)
    models = [
        # v1: good but deliberately simple (few features carry the decision).
        make_pipeline(StandardScaler(), LogisticRegression(C=0.002, max_iter=500)),
        # v2: better.
        RandomForestClassifier(n_estimators=100, random_state=0),
        # v3: bad on purpose: trained on shuffled labels, about as good as a coin.
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
    ]
    targets = [y_train, y_train, shuffled]
    return [m.fit(X_train.astype(np.float32), t) for m, t in zip(models, targets, strict=True)]


def make_examples(store: ModelStore, name: str = EXAMPLE_NAME) -> list[ImportResult]:
    import skops.io as sio

    X_train, X_test, y_train, y_test, names = example_data()
    sample = Sample.from_array(X_test, y_test, names, "breast-cancer holdout (30%)")
    results = []
    with tempfile.TemporaryDirectory(prefix="mlops-example-") as tmp:
        for i, model in enumerate(example_models(), start=1):
            path = Path(tmp) / f"v{i}.skops"  # the safe format: no pickle, ever
            sio.dump(model, path)
            # The rows each was fitted on (v3's labels shuffled, as it was), for batch updates.
            labels = np.random.default_rng(0).permutation(y_train) if i == 3 else y_train
            training = Sample.from_array(X_train, labels, names, "breast-cancer training")
            results.append(import_model(store, path, name, sample, training=training))
    return results
