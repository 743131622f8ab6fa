"""`models`: scikit-learn pickles become verified ONNX versions; bad files get clear errors."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import joblib
import numpy as np
import onnxruntime as ort
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import Ridge
from sklearn.semi_supervised import LabelPropagation

from cluster.models.errors import ModelError
from cluster.models.examples import example_data
from cluster.models.importer import import_model, read_sample_csv
from cluster.models.store import ModelStore
from console.cli import main


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    from cluster.models.examples import make_examples

    store = ModelStore(tmp_path_factory.mktemp("store"))
    make_examples(store)
    return store


def test_examples_are_good_better_and_bad(examples: ModelStore) -> None:
    accs = [
        examples.get("breast-cancer", v).meta.raw["metrics"]["accuracy"] for v in ("1", "2", "3")
    ]
    assert accs[1] > accs[0] > 0.85 and accs[2] < 0.7
    meta = examples.get("breast-cancer", "2").meta
    assert meta.n_features == 30 and meta.classes == (0, 1) and meta.task == "classifier"
    assert meta.feature_names is not None and meta.feature_names[0] == "mean radius"
    ref = meta.raw["reference"]["features"][0]
    assert abs(sum(ref["fractions"]) - 1) < 1e-9 and len(ref["fractions"]) == len(ref["edges"]) + 1
    holdout = json.loads((examples.root / "breast-cancer" / "2" / "holdout.json").read_text())
    assert len(holdout["X"]) == len(holdout["y"]) == 171


def test_onnx_matches_sklearn_on_the_holdout(examples: ModelStore) -> None:
    _, X_test, _, _, _ = example_data()
    session = ort.InferenceSession(str(examples.root / "breast-cancer" / "1" / "model.onnx"))
    labels, probas = session.run(None, {"X": X_test.astype(np.float32)})
    assert labels.shape == (171,) and probas.shape == (171, 2)


def test_reimporting_identical_bytes_is_recognised(examples: ModelStore, tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier

    X_train, _, y_train, _, _ = example_data()
    model = RandomForestClassifier(n_estimators=100, random_state=0).fit(
        X_train.astype(np.float32), y_train
    )
    joblib.dump(model, tmp_path / "again.joblib")
    result = import_model(examples, tmp_path / "again.joblib", "breast-cancer")
    assert not result.created and result.version == "2"
    assert examples.versions("breast-cancer") == ["1", "2", "3"]


def test_regressor_with_a_labelled_csv_sample(tmp_path: Path) -> None:
    X, y = load_diabetes(return_X_y=True)
    joblib.dump(Ridge().fit(X, y), tmp_path / "ridge.pkl")
    csv = tmp_path / "sample.csv"
    csv.write_text(
        "\n".join(
            [",".join([f"x{i}" for i in range(10)] + ["target"])]
            + [",".join(map(str, [*r, t])) for r, t in zip(X[:50], y[:50], strict=True)]
        )
    )
    store = ModelStore(tmp_path / "store")
    result = import_model(store, tmp_path / "ridge.pkl", "diabetes", read_sample_csv(csv, 10))
    assert result.created and result.task == "regressor" and result.parity_rows == 50
    assert set(result.metrics) == {"mse", "mae"}
    assert store.get("diabetes").meta.feature_names == tuple(f"x{i}" for i in range(10))


def test_bad_model_files_name_the_file(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"definitely not a pickle")
    with pytest.raises(ModelError, match=f"{garbage}: not a joblib/pickle file"):
        import_model(store, garbage, "x")
    not_sklearn = tmp_path / "dict.pkl"
    not_sklearn.write_bytes(pickle.dumps({"weights": [1, 2]}))
    with pytest.raises(
        ModelError, match=f"{not_sklearn}: contains a builtins.dict, not a scikit-learn"
    ):
        import_model(store, not_sklearn, "x")
    X, y = load_iris(return_X_y=True)
    odd = tmp_path / "propagation.pkl"
    joblib.dump(LabelPropagation().fit(X, y), odd)
    with pytest.raises(ModelError, match=f"{odd}: skl2onnx cannot convert this LabelPropagation"):
        import_model(store, odd, "x")
    assert store.names() == []  # nothing half-written


def test_tampered_artifact_is_refused(examples: ModelStore, tmp_path: Path) -> None:
    import shutil

    copy = ModelStore(tmp_path / "copy")
    shutil.copytree(examples.root / "breast-cancer" / "1", copy.root / "breast-cancer" / "1")
    model = copy.root / "breast-cancer" / "1" / "model.onnx"
    model.write_bytes(model.read_bytes()[:-1] + b"\x00")
    with pytest.raises(
        ModelError, match=f"{model}: sha256 is .* tampered with; refusing to load it"
    ):
        copy.get("breast-cancer", "1")


def test_models_cli(examples: ModelStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--store", str(examples.root), "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [(m["name"], m["version"]) for m in listing["models"]] == [
        ("breast-cancer", v) for v in ("1", "2", "3")
    ]
    assert main(["models", "--store", str(examples.root), "show", "breast-cancer:3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verified"] is True
    assert main(["models", "--store", str(examples.root), "show", "breast-cancer:9"]) == 1
    assert "has no version 9" in capsys.readouterr().err
    assert main(["models", "--store", str(examples.root), "show", "nope"]) == 1
    assert "no model named 'nope'" in capsys.readouterr().err
