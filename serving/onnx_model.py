"""One ONNX model version loaded into onnxruntime: created once per replica, run per batch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from serving.artifacts import MODEL_FILE, ModelMeta, verify
from serving.instances import Batch
from serving.schema import InputSchema, Kind, Layout

MISSING_TEXT = ""  # a missing category, as the converted graph's string inputs take it


@dataclass(frozen=True)
class Prediction:
    """Outputs for a batch of rows: labels (or values) and, for classifiers, probabilities."""

    labels: list[Any]
    probabilities: np.ndarray | None


class OnnxModel:
    """A verified model: the sha256 is checked before onnxruntime ever sees the file."""

    def __init__(self, version_dir: Path, threads: int = 1) -> None:
        self.meta: ModelMeta = verify(version_dir)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(version_dir / MODEL_FILE), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        outputs = [o.name for o in self._session.get_outputs()]
        self._label_out = outputs[0]
        self._proba_out = outputs[1] if self.meta.is_classifier and len(outputs) > 1 else None

    def predict(self, batch: Batch) -> Prediction:
        wanted = [self._label_out] + ([self._proba_out] if self._proba_out else [])
        out = self._session.run(wanted, onnx_feed(self.meta.schema, batch, self._input))
        labels = out[0]
        if not self.meta.is_classifier:
            return Prediction(np.asarray(labels, dtype=np.float64).reshape(-1).tolist(), None)
        probabilities = np.asarray(out[1], dtype=np.float64) if self._proba_out else None
        return Prediction(np.asarray(labels).reshape(-1).tolist(), probabilities)


def onnx_feed(schema: InputSchema, batch: Batch, matrix_input: str) -> dict[str, np.ndarray]:
    """The graph's inputs: one float matrix, or one (rows, 1) tensor per column named after it
    (a missing category is the empty string, a missing number NaN)."""
    if schema.layout is Layout.MATRIX:
        return {matrix_input: batch.numbers}
    out: dict[str, np.ndarray] = {}
    numbers = texts = 0
    for column in schema.columns:
        if column.kind is Kind.CATEGORY:
            values = batch.texts[:, texts]
            out[column.name] = np.where(values == None, MISSING_TEXT, values).reshape(-1, 1)  # noqa: E711
            texts += 1
        else:
            out[column.name] = batch.numbers[:, numbers : numbers + 1]
            numbers += 1
    return out
