"""Load a scikit-learn model from a pickle (operator's machine only), convert it with
skl2onnx, and prove the ONNX graph predicts what scikit-learn predicts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cluster.models.errors import ModelError

PROBA_TOLERANCE = 1e-4


TRUSTED_PREFIXES = ("sklearn.",)
PICKLE_RISK = (
    "loading a pickle or joblib file runs whatever code it holds, here, on the machine that "
    "holds the fleet's SSH keys"
)


def is_skops_file(path: Path) -> bool:
    """A skops file is a zip archive with a schema.json (a pickle never is)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return "schema.json" in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def load_estimator(path: Path, *, trust_pickle: bool = False) -> Any:
    """The estimator in a skops file (the safe format: only types skops trusts are built, any
    other is refused and named), or, with `trust_pickle`, in a joblib or pickle file;
    ModelError saying what the file is instead."""
    if not path.is_file():
        raise ModelError(f"{path}: no such file")
    if is_skops_file(path):
        estimator = _load_skops(path)
    elif not trust_pickle:
        raise ModelError(
            f"{path}: not a skops file; {PICKLE_RISK}. Save the model with skops "
            "(skops.io.dump(model, 'model.skops')) and import that, or, if you made this file "
            "yourself, pass --trust-pickle"
        )
    else:
        estimator = _load_pickle(path)
    from sklearn.base import BaseEstimator

    if not isinstance(estimator, BaseEstimator):
        raise ModelError(
            f"{path}: contains a {type(estimator).__module__}.{type(estimator).__name__}, "
            "not a scikit-learn estimator or pipeline"
        )
    if not hasattr(estimator, "n_features_in_"):
        raise ModelError(f"{path}: the {type(estimator).__name__} is not fitted")
    return estimator


def _load_skops(path: Path) -> Any:
    import skops.io as sio

    try:
        listed = sio.get_untrusted_types(file=path)
        # scikit-learn's own internal types (a tree's Tree, a loss object) are as safe to
        # build as scikit-learn itself, which this tool already runs; anything else is not.
        untrusted = sorted(t for t in listed if not t.startswith(TRUSTED_PREFIXES))
        if untrusted:
            raise ModelError(
                f"{path}: holds types skops does not trust, so it was not loaded: "
                f"{', '.join(untrusted)}. If they are yours, save the model without them, "
                "or load and check it yourself"
            )
        return sio.load(path, trusted=listed)
    except ModelError:
        raise
    # A damaged archive can fail in many ways (zip, JSON, schema, numpy): "not readable".
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"{path}: not a readable skops file ({_kind(exc)}: {exc})") from None


def _load_pickle(path: Path) -> Any:
    import joblib

    try:
        return joblib.load(path)
    except (ModuleNotFoundError, AttributeError) as exc:
        raise ModelError(
            f"{path}: the pickle needs code that is not installed here ({exc})"
        ) from None
    # An untrusted file can fail to load in any way (zlib.error, OSError, pickle errors,
    # MemoryError, ...): each means "not a model we can read", never a traceback.
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"{path}: not a joblib/pickle file ({_kind(exc)}: {exc})") from None


def _kind(exc: BaseException) -> str:
    """The exception's type as a reader can look it up: 'zlib.error', 'ValueError'."""
    kind = type(exc)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def task_of(estimator: Any, source: Path) -> str:
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(estimator):
        return "classifier"
    if is_regressor(estimator):
        return "regressor"
    raise ModelError(
        f"{source}: a {type(estimator).__name__} is neither a classifier nor a regressor; "
        "only those can be served"
    )


def to_onnx_bytes(estimator: Any, n_features: int, source: Path) -> bytes:
    from skl2onnx import to_onnx
    from sklearn.base import is_classifier

    sample = np.zeros((1, n_features), dtype=np.float32)
    # Plain probability arrays instead of a list of {class: p} maps: fast and simple to serve.
    options = {"zipmap": False} if is_classifier(estimator) else None
    try:
        model = to_onnx(estimator, sample, options=options)
    except Exception as exc:  # noqa: BLE001 - skl2onnx raises many types; all mean "cannot convert"
        raise ModelError(
            f"{source}: skl2onnx cannot convert this {type(estimator).__name__}: {exc}"
        ) from None
    return bytes(model.SerializeToString())


@dataclass(frozen=True)
class Parity:
    """How closely ONNX matched scikit-learn on the sample."""

    rows: int
    labels_equal: bool
    max_proba_diff: float | None
    max_value_diff: float | None


def check_parity(
    estimator: Any, onnx_bytes: bytes, X: np.ndarray, task: str, source: Path
) -> Parity:
    """Labels identical and probabilities within 1e-4, or ModelError with the worst row."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    x32 = X.astype(np.float32)
    outputs = session.run(None, {session.get_inputs()[0].name: x32})
    if task == "regressor":
        expected = np.asarray(estimator.predict(x32), dtype=np.float64).reshape(-1)
        got = np.asarray(outputs[0], dtype=np.float64).reshape(-1)
        diff = np.abs(expected - got)
        tol = PROBA_TOLERANCE * np.maximum(1.0, np.abs(expected))
        if (diff > tol).any():
            row = int(np.argmax(diff - tol))
            raise ModelError(
                f"{source}: ONNX differs from scikit-learn on row {row}: {got[row]} vs {expected[row]}"
            )
        return Parity(len(X), True, None, float(diff.max(initial=0.0)))
    labels = estimator.predict(x32)
    onnx_labels = np.asarray(outputs[0]).reshape(-1)
    differs = np.asarray(labels) != onnx_labels
    if hasattr(estimator, "predict_proba"):
        # A row whose two best classes are tied within the tolerance may break the tie either
        # way; its probabilities are still compared below.
        top2 = np.sort(np.asarray(estimator.predict_proba(x32)), axis=1)[:, -2:]
        differs &= (top2[:, 1] - top2[:, 0]) > PROBA_TOLERANCE
    mismatch = np.nonzero(differs)[0]
    if mismatch.size:
        row = int(mismatch[0])
        raise ModelError(
            f"{source}: ONNX predicts {onnx_labels[row]!r} where scikit-learn predicts {labels[row]!r} "
            f"on sample row {row} ({mismatch.size} of {len(X)} rows differ); not importing"
        )
    max_diff = None
    if len(outputs) > 1 and hasattr(estimator, "predict_proba"):
        diff = np.abs(np.asarray(estimator.predict_proba(x32)) - np.asarray(outputs[1]))
        max_diff = float(diff.max(initial=0.0))
        if max_diff > PROBA_TOLERANCE:
            row = int(np.unravel_index(np.argmax(diff), diff.shape)[0])
            raise ModelError(
                f"{source}: ONNX probabilities differ from scikit-learn by {max_diff:.2e} "
                f"(> {PROBA_TOLERANCE}) on sample row {row}; not importing"
            )
    return Parity(len(X), True, max_diff, None)
