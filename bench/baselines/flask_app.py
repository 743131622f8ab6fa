"""Baseline: the tutorial approach, Flask's threaded server around a pickled scikit-learn model.

Run: python bench/baselines/flask_app.py MODEL.joblib PORT
"""

from __future__ import annotations

import sys

import joblib
import numpy as np
from flask import Flask, jsonify, request

model = joblib.load(sys.argv[1])
app = Flask(__name__)


@app.post("/predict")
def predict():  # type: ignore[no-untyped-def]
    rows = np.asarray(request.get_json()["instances"], dtype=np.float64)
    return jsonify(
        {
            "predictions": model.predict(rows).tolist(),
            "probabilities": model.predict_proba(rows).tolist(),
        }
    )


if __name__ == "__main__":
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app.run(host="127.0.0.1", port=int(sys.argv[2]), threaded=True)
