"""BentoML as its documentation writes a scikit-learn service: a class decorated with
@bentoml.service that loads the model in __init__, and an @bentoml.api method taking a
numpy array (the JSON body's key is the parameter's name: {"data": [[...], ...]})."""

from __future__ import annotations

import os

import bentoml
import joblib
import numpy as np


@bentoml.service(
    workers=int(os.environ.get("PEER_WORKERS", "2")),
    metrics={"enabled": False},
)
class Forest:
    def __init__(self) -> None:
        self.model = joblib.load(os.environ["PEER_MODEL"])

    @bentoml.api
    def predict(self, data: np.ndarray) -> dict:  # type: ignore[type-arg]
        return {
            "predictions": self.model.predict(data).tolist(),
            "probabilities": self.model.predict_proba(data).tolist(),
        }
