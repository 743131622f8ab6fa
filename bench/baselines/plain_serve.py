"""Baselines: what a Ray user writes from the docs — one Serve deployment, JSON in, JSON out,
calling scikit-learn `predict` (from a pickle) or onnxruntime directly. No validation, no
batching, no monitor."""

from __future__ import annotations

import json
from typing import Any

import joblib
import numpy as np
import onnxruntime as ort
from ray import serve
from starlette.requests import Request


@serve.deployment
class SklearnModel:
    def __init__(self, path: str) -> None:
        self.model = joblib.load(path)

    async def __call__(self, request: Request) -> dict[str, Any]:
        rows = np.asarray(json.loads(await request.body())["instances"], dtype=np.float64)
        return {
            "predictions": self.model.predict(rows).tolist(),
            "probabilities": self.model.predict_proba(rows).tolist(),
        }


@serve.deployment
class OnnxModel:
    def __init__(self, path: str) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(
            path, sess_options=options, providers=["CPUExecutionProvider"]
        )

    async def __call__(self, request: Request) -> dict[str, Any]:
        rows = np.asarray(json.loads(await request.body())["instances"], dtype=np.float32)
        labels, probas = self.session.run(None, {"X": rows})
        return {"predictions": labels.tolist(), "probabilities": probas.tolist()}


def sklearn_app(args: dict[str, Any]) -> Any:
    return SklearnModel.bind(args["path"])  # type: ignore[attr-defined]


def onnx_app(args: dict[str, Any]) -> Any:
    return OnnxModel.bind(args["path"])  # type: ignore[attr-defined]
