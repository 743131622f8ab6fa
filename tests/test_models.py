"""`models`: scikit-learn pickles become verified ONNX versions; bad files get clear errors."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import joblib
import numpy as np
import onnxruntime as ort
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import Ridge
from sklearn.semi_supervised import LabelPropagation

from cluster.models.errors import ModelError
from cluster.models.examples import example_data, example_models, make_examples
from cluster.models.importer import import_model, read_sample_csv
from cluster.models.store import ModelStore
from console.cli import main
from serving.schema import InputSchema


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
    assert (
        abs(sum(ref["fractions"]) - 1) < 1e-9 and len(ref["fractions"]) == len(ref["edges"]) + 2
    )  # bins, then "missing"
    holdout = json.loads((examples.root / "breast-cancer" / "2" / "holdout.json").read_text())
    assert len(holdout["X"]) == len(holdout["y"]) == 171


def test_onnx_matches_sklearn_on_the_holdout(examples: ModelStore) -> None:
    _, X_test, _, _, _ = example_data()
    x32 = X_test.astype(np.float32)
    for version, model in enumerate(example_models(), start=1):
        path = examples.root / "breast-cancer" / str(version) / "model.onnx"
        labels, probas = ort.InferenceSession(str(path)).run(None, {"X": x32})
        assert labels.shape == (171,) and probas.shape == (171, 2)
        assert labels.tolist() == model.predict(x32).tolist(), version
        np.testing.assert_allclose(probas, model.predict_proba(x32), rtol=0, atol=1e-4)


def test_reimporting_identical_bytes_is_recognised(examples: ModelStore, tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier

    X_train, _, y_train, _, _ = example_data()
    model = RandomForestClassifier(n_estimators=100, random_state=0).fit(
        X_train.astype(np.float32), y_train
    )
    joblib.dump(model, tmp_path / "again.joblib")
    result = import_model(examples, tmp_path / "again.joblib", "breast-cancer", trust_pickle=True)
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
    result = import_model(
        store,
        tmp_path / "ridge.pkl",
        "diabetes",
        read_sample_csv(csv, InputSchema.numbers([f"f{j}" for j in range(10)])),
        trust_pickle=True,
    )
    assert result.created and result.task == "regressor" and result.parity_rows == 50
    assert set(result.metrics) == {"mse", "mae"}
    assert store.get("diabetes").meta.feature_names == tuple(f"x{i}" for i in range(10))


def test_bad_model_files_name_the_file(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"definitely not a pickle")
    with pytest.raises(ModelError, match=f"{garbage}: not a joblib/pickle file"):
        import_model(store, garbage, "x", trust_pickle=True)
    not_sklearn = tmp_path / "dict.pkl"
    not_sklearn.write_bytes(pickle.dumps({"weights": [1, 2]}))
    with pytest.raises(
        ModelError, match=f"{not_sklearn}: contains a builtins.dict, not a scikit-learn"
    ):
        import_model(store, not_sklearn, "x", trust_pickle=True)
    X, y = load_iris(return_X_y=True)
    odd = tmp_path / "propagation.pkl"
    joblib.dump(LabelPropagation().fit(X, y), odd)
    with pytest.raises(ModelError, match=f"{odd}: skl2onnx cannot convert this LabelPropagation"):
        import_model(store, odd, "x", trust_pickle=True)
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


def test_a_damaged_compressed_file_is_a_model_error(tmp_path: Path) -> None:
    path = tmp_path / "damaged.joblib"
    joblib.dump(Ridge().fit(np.eye(3), [1, 2, 3]), path, compress=("zlib", 3))
    data = path.read_bytes()
    path.write_bytes(data[:10] + bytes(b ^ 0x5A for b in data[10:]))  # zlib.error on load
    with pytest.raises(ModelError, match=f"{path}: not a joblib/pickle file \\(zlib.error: "):
        import_model(ModelStore(tmp_path / "store"), path, "x", trust_pickle=True)


def test_neither_classifier_nor_regressor_names_the_file(tmp_path: Path) -> None:
    from sklearn.preprocessing import StandardScaler

    path = tmp_path / "scaler.joblib"
    joblib.dump(StandardScaler().fit(np.eye(3)), path)
    with pytest.raises(ModelError, match=f"{path}: a StandardScaler is neither a classifier"):
        import_model(ModelStore(tmp_path / "store"), path, "x", trust_pickle=True)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "1,nan,0",
            "sample.csv:3: column 'b' is 'nan': NaN and infinity are not valid features; leave the cell empty for a missing value",
        ),
        (
            "1, inf ,0",
            "sample.csv:3: column 'b' is 'inf': NaN and infinity are not valid features; leave the cell empty for a missing value",
        ),
        ("1,2,NaN", "sample.csv:3: label 'y' is 'NaN': NaN and infinity are not valid labels"),
    ],
)
def test_non_finite_sample_values_are_refused_with_their_line(
    tmp_path: Path, line: str, message: str
) -> None:
    csv = tmp_path / "sample.csv"
    csv.write_text(f"a,b,y\n1,2,0\n{line}\n")
    with pytest.raises(ModelError) as info:
        read_sample_csv(csv, InputSchema.numbers(["a", "b"]))
    assert str(info.value) == f"{tmp_path}/{message}"


def test_without_a_sample_there_is_no_drift_reference(tmp_path: Path) -> None:
    X, y = load_iris(return_X_y=True)
    from sklearn.linear_model import LogisticRegression

    joblib.dump(LogisticRegression(max_iter=1000).fit(X, y), tmp_path / "iris.joblib")
    store = ModelStore(tmp_path / "store")
    import_model(store, tmp_path / "iris.joblib", "iris", trust_pickle=True)
    meta = store.get("iris").meta
    assert meta.raw["reference"] is None and meta.raw["parity"]["sample"] == "synthetic"
    from serving.monitor.tracker import AccuracyTracker

    tracker = AccuracyTracker(tmp_path / "m.sqlite")
    tracker.register("1", meta.task, list(meta.classes or ()), meta.raw["reference"])
    version = tracker.summary()["versions"]["1"]
    assert version["drift"] is None
    assert version["drift_status"] == "not available: no reference sample"


def test_names_that_could_leave_the_store_are_refused(
    examples: ModelStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    X, y = load_iris(return_X_y=True)
    from sklearn.linear_model import LogisticRegression

    model = tmp_path / "iris.joblib"
    joblib.dump(LogisticRegression(max_iter=1000).fit(X, y), model)
    store = tmp_path / "store"
    for name in ("../escaped", "..", "a/b", ".hidden", "a..b", ""):
        code = main(["models", "--store", str(store), "import", str(model), "--name", name])
        assert code == 2, name
        assert f"invalid model name {name!r}" in capsys.readouterr().err
    assert not (tmp_path / "escaped").exists() and not store.exists()
    outside = examples.root.parent / "x" / "1"
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "meta.json").write_text("{}")
    for ref, what in (("../x:1", "model name '../x'"), ("breast-cancer:../1", "version '../1'")):
        assert main(["models", "--store", str(examples.root), "show", ref]) == 2
        assert f"invalid {what}" in capsys.readouterr().err
    with pytest.raises(ModelError, match=re.escape("invalid model name '../x'")):
        examples.get("../x", "1")


def test_import_with_a_sample_loads_the_pickle_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    X, y = load_diabetes(return_X_y=True)
    joblib.dump(Ridge().fit(X, y), tmp_path / "ridge.pkl")
    csv = tmp_path / "sample.csv"
    csv.write_text(
        "\n".join(
            [",".join([f"x{i}" for i in range(10)] + ["target"])]
            + [",".join(map(str, [*r, t])) for r, t in zip(X[:20], y[:20], strict=True)]
        )
    )
    loads: list[object] = []
    real_load = joblib.load

    def counting_load(path: object, *args: object, **kw: object) -> object:
        loads.append(path)
        return real_load(path, *args, **kw)

    monkeypatch.setattr(joblib, "load", counting_load)
    argv = ["models", "--store", str(tmp_path / "store"), "import", str(tmp_path / "ridge.pkl"),
            "--trust-pickle"]  # fmt: skip
    assert main([*argv, "--name", "diabetes", "--sample", str(csv), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["created"] is True
    assert len(loads) == 1


def test_list_shows_a_corrupt_version_as_invalid_and_the_rest(
    examples: ModelStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(examples.root, root)
    (root / "breast-cancer" / "2" / "meta.json").write_text("{not json")
    assert main(["models", "--store", str(root), "list", "--json"]) == 1
    models = json.loads(capsys.readouterr().out)["models"]
    assert [(m["name"], m["version"]) for m in models] == [
        ("breast-cancer", v) for v in ("1", "2", "3")
    ]
    assert "meta.json: unreadable" in models[1]["invalid"]
    assert "invalid" not in models[0] and "invalid" not in models[2]
    assert main(["models", "--store", str(root), "list"]) == 1
    text = capsys.readouterr().out
    assert "invalid: breast-cancer:2:" in text and "meta.json: unreadable" in text


class _Canary:
    """A pickle that, when loaded, creates a file: what any pickle can do, and worse."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, ...]:
        return (Path.touch, (self.path,))


def test_a_pickle_is_never_loaded_without_trust_pickle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model.pkl"
    planted = tmp_path / "pwned"
    model.write_bytes(pickle.dumps(_Canary(planted)))
    store = tmp_path / "store"
    assert main(["models", "--store", str(store), "import", str(model), "--name", "m"]) == 1
    err = capsys.readouterr().err
    assert f"{model}: not a skops file; loading a pickle" in err and "--trust-pickle" in err
    assert not planted.exists()  # the pickle never ran
    assert not store.exists()


def test_a_skops_file_is_the_safe_way_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    model = tmp_path / "iris.skops"
    sio.dump(LogisticRegression(max_iter=1000).fit(X, y), model)
    argv = ["models", "--store", str(tmp_path / "store"), "import", str(model), "--name", "iris"]
    assert main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["task"] == "classifier"
    # A type skops does not trust is refused, named, and never built.
    odd = tmp_path / "odd.skops"
    sio.dump(_Canary(tmp_path / "pwned"), odd)
    code = main(["models", "--store", str(tmp_path / "store"), "import", str(odd), "--name", "x"])
    assert code == 1
    err = capsys.readouterr().err
    assert "holds types skops does not trust" in err and "_Canary" in err
    assert not (tmp_path / "pwned").exists()


def test_the_estimator_is_kept_beside_the_version_never_in_it(tmp_path: Path) -> None:
    """`models update` continues from the estimator a version came from: kept as skops on the
    operator's side, outside the version directory that apply ships to hosts."""
    from cluster.models.convert import load_estimator

    store = ModelStore(tmp_path / "store")
    make_examples(store)
    for version in ("1", "2", "3"):
        kept = store.source("breast-cancer", version)
        assert kept is not None and kept.parent.name == ".sources"
        assert sorted(p.name for p in (store.root / "breast-cancer" / version).iterdir()) == [
            "holdout.json", "meta.json", "model.onnx",
        ]  # fmt: skip
        assert store.get("breast-cancer", version).meta.raw["lineage"] == {
            "method": "import", "parent": None,
        }  # fmt: skip
    estimator = load_estimator(store.source("breast-cancer", "2"))  # the trusted-types check
    X = example_data()[1][:20].astype(np.float32)
    assert (estimator.predict(X) == example_models()[1].predict(X)).all()
    assert store.names() == ["breast-cancer"] and store.versions("breast-cancer") == ["1", "2", "3"]
    assert not list((store.root / "breast-cancer" / ".sources").glob(".incoming*"))
