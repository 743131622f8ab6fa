"""The service a user writes by hand: FastAPI, a pydantic request model, an onnxruntime
session on the same ONNX file ours serves. Run: uvicorn app:app --workers N."""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI
from pydantic import BaseModel

session = ort.InferenceSession(os.environ["PEER_MODEL"], providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name
app = FastAPI()


class Request(BaseModel):
    instances: list[list[float]]


@app.post("/predict")
def predict(request: Request) -> dict:  # type: ignore[type-arg]
    rows = np.asarray(request.instances, dtype=np.float32)
    labels, probabilities = session.run(None, {input_name: rows})
    return {"predictions": labels.tolist(), "probabilities": probabilities.tolist()}
