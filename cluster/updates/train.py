"""A candidate from production records, and the evidence to accept or refuse it.

Two ways, as the literature on model updates has them:
- incremental: `partial_fit` on a copy of the live version's estimator (SGD, naive Bayes, MLP
  and the like; inside a Pipeline, the steps that have `partial_fit` learn too, the others
  stay as they were fitted);
- batch: the same estimator, unfitted (`clone`), fitted again on the records (and on the
  version's own training data when the store has it).

Either is judged against the live version on the same newest records (held out from
training) and on the version's stored holdout.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from cluster.models.convert import quiet
from cluster.models.store import StoredVersion
from cluster.models.tabular import Sample, fitted_input
from cluster.updates.dataset import UpdateInputError
from serving.schema import InputSchema

EPOCHS = 1  # passes of partial_fit over the records: more forgets what the holdout holds
# Rehearsal: each pass also replays this many of the version's own training rows per new
# record (when the store kept them), so the model learns the new without forgetting the old.
REHEARSAL = 2


class Method(StrEnum):
    """How the candidate learns from the records."""

    INCREMENTAL = "incremental"
    BATCH = "batch"


def incremental(
    parent: Any, train: Sample, schema: InputSchema, seed: int = 0, base: Sample | None = None
) -> Any:
    """A copy of `parent` that has also learnt from `train` with partial_fit, interleaved
    with a random share of `base` (the rows it was fitted on) when given."""
    final = parent.steps[-1][1] if hasattr(parent, "steps") else parent
    if not hasattr(final, "partial_fit"):
        raise UpdateInputError(
            f"a {type(final).__name__} cannot learn incrementally (it has no partial_fit): "
            "use --method batch"
        )
    model = copy.deepcopy(parent)
    rng = np.random.default_rng(seed)
    with quiet():
        steps = model.steps[:-1] if hasattr(model, "steps") else []
        if any(hasattr(step, "partial_fit") for _, step in steps):
            X = fitted_input(model, train, schema)
            for _, step in steps:  # the steps that can learn (a scaler) learn the new rows once
                if step in (None, "passthrough"):
                    continue
                if hasattr(step, "partial_fit"):
                    step.partial_fit(X)
                X = step.transform(X)
        final = model.steps[-1][1] if hasattr(model, "steps") else model
        for _ in range(EPOCHS):
            data = train
            if base is not None and len(base):
                k = min(len(base), REHEARSAL * len(train))
                data = concat(train, base.take(rng.choice(len(base), k, replace=False)))
            X = fitted_input(model, data, schema)
            for _, step in steps:
                if step not in (None, "passthrough"):
                    X = step.transform(X)
            y = np.asarray(data.y)
            order = rng.permutation(len(y))
            final.partial_fit(_rows(X, order), y[order])
    return model


def batch(parent: Any, train: Sample, schema: InputSchema, base: Sample | None = None) -> Any:
    """`parent`'s estimator, unfitted, fitted on `base` (its own training data) and `train`."""
    from sklearn.base import clone

    data = concat(base, train) if base is not None else train
    model = clone(parent)
    with quiet():
        # The parent's input form: a DataFrame if it was fitted on one (a clone is unfitted).
        model.fit(fitted_input(parent, data, schema), np.asarray(data.y))
    return model


def _rows(X: Any, order: np.ndarray) -> Any:
    return X.iloc[order] if hasattr(X, "iloc") else X[order]


def concat(a: Sample, b: Sample) -> Sample:
    assert a.y is not None and b.y is not None
    columns = {k: np.concatenate([a.columns[k], b.columns[k]]) for k in a.columns}
    return Sample(columns, np.concatenate([a.y, b.y]), f"{a.source} + {b.source}")


def score(estimator: Any, sample: Sample, schema: InputSchema, task: str) -> dict[str, float]:
    """The figures the gates use: accuracy (classifiers) or mse (regressors), and company."""
    from cluster.models.profile import holdout_metrics

    return holdout_metrics(task, estimator, sample, schema)


def stored_holdout(version: StoredVersion) -> Sample | None:
    """The version's holdout.json as a Sample (lists of numbers or records), or None."""
    return stored_rows(Path(version.path) / "holdout.json", version, "holdout")


def stored_rows(path: Path | None, version: StoredVersion, what: str) -> Sample | None:
    """Labelled rows kept as holdout.json keeps them (X and y), or None without any."""
    if path is None or not path.is_file():
        return None
    data = json.loads(path.read_text())
    rows = data.get("X") or []
    if not rows:
        return None
    source = f"{version.name}:{version.version} {what}"
    return Sample.from_rows(rows, version.meta.schema, np.asarray(data["y"]), source)


@dataclass(frozen=True)
class Verdict:
    """The candidate against the live version, on the newest records and on the holdout."""

    metric: str
    live_new: float
    candidate_new: float
    live_holdout: float | None
    candidate_holdout: float | None
    accepted: bool
    reason: str


def judge(
    metric: str,
    live_new: dict[str, float],
    cand_new: dict[str, float],
    live_holdout: dict[str, float] | None,
    cand_holdout: dict[str, float] | None,
    margin: float,
) -> Verdict:
    """Accepted only when better on the newest records and not worse than `margin` on the
    holdout (for mse, `margin` is relative: at most that share higher)."""
    lower_better = metric in ("mse", "mae")
    ln, cn = live_new[metric], cand_new[metric]
    lh = live_holdout.get(metric) if live_holdout else None
    ch = cand_holdout.get(metric) if cand_holdout else None
    better = cn < ln if lower_better else cn > ln
    if not better:
        why = f"not better on the newest records: {metric} {cn:.4f} vs the live version's {ln:.4f}"
        return Verdict(metric, ln, cn, lh, ch, False, why)
    if lh is not None and ch is not None:
        worse = ch > lh * (1 + margin) if lower_better else ch < lh - margin
        if worse:
            why = (f"worse on the holdout than --margin {margin:g} allows: {metric} {ch:.4f} "
                   f"vs the live version's {lh:.4f}")  # fmt: skip
            return Verdict(metric, ln, cn, lh, ch, False, why)
    why = f"better on the newest records ({metric} {cn:.4f} vs {ln:.4f})" + (
        f" and within {margin:g} on the holdout ({ch:.4f} vs {lh:.4f})"
        if lh is not None and ch is not None
        else "; no holdout stored to check it against"
    )
    return Verdict(metric, ln, cn, lh, ch, True, why)


def primary_metric(task: str) -> str:
    return "mse" if task == "regressor" else "accuracy"
