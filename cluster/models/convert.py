"""Load a scikit-learn model from a pickle (operator's machine only), convert it with
skl2onnx, and prove the ONNX graph predicts what scikit-learn predicts."""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from cluster.models.errors import ModelError
from cluster.models.tabular import Sample, fitted_input
from serving.schema import InputSchema, Kind, Layout

PROBA_TOLERANCE = 1e-4


TRUSTED_PREFIXES = ("sklearn.",)
# numpy's dtype objects (an encoder's dtype=np.float64 parameter) hold no code: trusted too.
TRUSTED_TYPES = frozenset({"numpy.dtype"})
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
        untrusted = sorted(
            t for t in listed if not t.startswith(TRUSTED_PREFIXES) and t not in TRUSTED_TYPES
        )
        if untrusted:
            raise ModelError(
                f"{path}: holds types skops does not trust, so it was not loaded: "
                f"{', '.join(untrusted)}. If they are yours, save the model without them, "
                "or load and check it yourself"
            )
        with quiet():
            return sio.load(path, trusted=listed)
    except ModelError:
        raise
    # A damaged archive can fail in many ways (zip, JSON, schema, numpy): "not readable".
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"{path}: not a readable skops file ({_kind(exc)}: {exc})") from None


def _load_pickle(path: Path) -> Any:
    import joblib

    try:
        with quiet():
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


def to_onnx_bytes(estimator: Any, schema: InputSchema, source: Path) -> tuple[bytes, InputSchema]:
    """The ONNX graph and the schema it takes its inputs by: an all-numeric model takes one
    float matrix (as before schemas existed), unless skl2onnx needs its columns by name (a
    ColumnTransformer picking numeric columns by name); any other takes one typed tensor per
    column."""
    from sklearn.base import is_classifier

    # Plain probability arrays instead of a list of {class: p} maps: fast and simple to serve.
    options = {"zipmap": False} if is_classifier(estimator) else None
    layouts = [schema.layout]
    if schema.layout is Layout.MATRIX and getattr(estimator, "feature_names_in_", None) is not None:
        layouts.append(Layout.COLUMNS)
    failure = ""
    for layout in layouts:
        typed = replace(schema, layout=layout)
        try:
            with quiet():
                model = _convert(estimator, typed, options)
            return bytes(model.SerializeToString()), typed
        except Exception as exc:  # noqa: BLE001 - skl2onnx raises many types; all mean "cannot convert"
            failure = failure or f"{exc}"
    raise ModelError(f"{source}: skl2onnx cannot convert this {_name(estimator)}: {failure}")


def _convert(estimator: Any, schema: InputSchema, options: dict[str, Any] | None) -> Any:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    patch_skl2onnx()
    if schema.layout is Layout.MATRIX:
        types = [("X", FloatTensorType([None, len(schema.columns)]))]
    else:
        types = [
            (
                c.name,
                StringTensorType([None, 1])
                if c.kind is Kind.CATEGORY
                else FloatTensorType([None, 1]),
            )
            for c in schema.columns
        ]
    return to_onnx(estimator, initial_types=types, options=options)


_PATCHED = False


def patch_skl2onnx() -> None:
    """skl2onnx 1.20 writes a tree leaf's missing-value flag as a Python bool, which protobuf 7
    (onnx 1.23) refuses for an integer attribute: HistGradientBoosting cannot be converted at
    all. Hand the flag over as the 0/1 integer ONNX defines it as; nothing else changes."""
    global _PATCHED
    if _PATCHED:
        return
    import skl2onnx.common.tree_ensemble as tree_ensemble

    original = tree_ensemble.add_node

    @functools.wraps(original)
    def add_node(*args: Any, nodes_missing_value_tracks_true: Any = 0, **kw: Any) -> Any:
        return original(
            *args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true), **kw
        )

    tree_ensemble.add_node = add_node
    _PATCHED = True


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Third-party warnings stay out of our output (an import prints our lines only): the
    conditions they warn about are checked and reported by us (parity, missing values)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _name(estimator: Any) -> str:
    return type(estimator).__name__


@dataclass(frozen=True)
class Parity:
    """How closely ONNX matched scikit-learn on the sample."""

    rows: int
    labels_equal: bool
    max_proba_diff: float | None
    max_value_diff: float | None


class Session:
    """The converted graph in onnxruntime, fed the way a replica feeds it."""

    def __init__(self, onnx_bytes: bytes, schema: InputSchema) -> None:
        import onnxruntime as ort

        from serving.onnx_model import onnx_feed

        self._session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
        self._feed = onnx_feed
        self._schema = schema
        self._input = self._session.get_inputs()[0].name

    def run(self, sample: Sample) -> list[Any]:
        return list(
            self._session.run(
                None, self._feed(self._schema, sample.batch(self._schema), self._input)
            )
        )


def predictions(
    estimator: Any, sample: Sample, schema: InputSchema, task: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """scikit-learn's labels (or values) and probabilities for the sample, from the rows as
    they were read (float64), as the model's users would compute them."""
    X = fitted_input(estimator, sample, schema)
    with quiet():
        labels = np.asarray(estimator.predict(X))
        probas = (
            np.asarray(estimator.predict_proba(X))
            if task == "classifier" and hasattr(estimator, "predict_proba")
            else None
        )
    return labels, probas


def check_parity(
    estimator: Any, session: Session, sample: Sample, schema: InputSchema, task: str, source: Path
) -> Parity:
    """Labels identical and probabilities within 1e-4, or ModelError with the worst row."""
    outputs = session.run(sample)
    try:
        labels, probas = predictions(estimator, sample, schema, task)
    except ValueError as exc:
        raise ModelError(
            f"{sample.source}: scikit-learn cannot predict the sample: {exc}"
        ) from None
    problem = compare(labels, probas, outputs, task)
    if problem:
        raise ModelError(f"{source}: {problem} ({sample.source}); not importing")
    if task == "regressor":
        got = np.asarray(outputs[0], dtype=np.float64).reshape(-1)
        diff = np.abs(labels.astype(np.float64) - got)
        return Parity(len(sample), True, None, float(diff.max(initial=0.0)))
    max_diff = None
    if probas is not None and len(outputs) > 1:
        max_diff = float(np.abs(probas - np.asarray(outputs[1])).max(initial=0.0))
    return Parity(len(sample), True, max_diff, None)


def compare(
    labels: np.ndarray, probas: np.ndarray | None, outputs: list[Any], task: str
) -> str | None:
    """How ONNX's outputs differ from scikit-learn's beyond the tolerance, or None."""
    if task == "regressor":
        expected = labels.astype(np.float64).reshape(-1)
        got = np.asarray(outputs[0], dtype=np.float64).reshape(-1)
        diff = np.abs(expected - got)
        tol = PROBA_TOLERANCE * np.maximum(1.0, np.abs(expected))
        if (diff > tol).any():
            row = int(np.argmax(diff - tol))
            return f"ONNX differs from scikit-learn on row {row}: {got[row]} vs {expected[row]}"
        return None
    onnx_labels = np.asarray(outputs[0]).reshape(-1)
    differs = np.asarray(labels) != onnx_labels
    if probas is not None:
        # A row whose two best classes are tied within the tolerance may break the tie either
        # way; its probabilities are still compared below.
        top2 = np.sort(probas, axis=1)[:, -2:]
        differs &= (top2[:, 1] - top2[:, 0]) > PROBA_TOLERANCE
    mismatch = np.nonzero(differs)[0]
    if mismatch.size:
        row = int(mismatch[0])
        return (
            f"ONNX predicts {onnx_labels[row]!r} where scikit-learn predicts {labels[row]!r} "
            f"on sample row {row} ({mismatch.size} of {len(labels)} rows differ)"
        )
    if probas is not None and len(outputs) > 1:
        diff = np.abs(probas - np.asarray(outputs[1]))
        if diff.max(initial=0.0) > PROBA_TOLERANCE:
            row = int(np.unravel_index(np.argmax(diff), diff.shape)[0])
            return (
                f"ONNX probabilities differ from scikit-learn by {diff.max():.2e} "
                f"(> {PROBA_TOLERANCE}) on sample row {row}"
            )
    return None
